/*
 * capvisor libsel4: object invocation stubs (libsel4's generated sel4_client.h, AArch64 MCS).
 *
 * Encoded as libsel4's stub generator encodes them for AArch64: the first capability argument
 * is the invoked object; the other capability arguments become extra caps (seL4_SetCap(i, ...));
 * the other arguments are packed into message words in order, each aligned to its own size
 * (a seL4_Uint8 or seL4_Bool shares a word with the arguments before it only when they are
 * smaller than a word), the first four words in registers x2..x5 through seL4_CallWithMRs and
 * the rest in the IPC buffer. The error is the reply's label; on error the four register words
 * are copied back to MR0..MR3 so the error details can be read with seL4_GetMR.
 *
 * Included by <sel4/sel4.h>; do not include directly.
 */
#pragma once

/* One invocation: tag, call, error label, and the error path of the generated stubs. */
static inline seL4_Error capvisor_invoke(seL4_CPtr service, seL4_Word label, seL4_Word extra_caps, seL4_Word length,
                                         seL4_Word *mr)
{
    seL4_MessageInfo_t tag = seL4_MessageInfo_new(label, 0, extra_caps, length);
    seL4_MessageInfo_t output_tag = seL4_CallWithMRs(service, tag, &mr[0], &mr[1], &mr[2], &mr[3]);
    seL4_Error result = (seL4_Error)seL4_MessageInfo_get_label(output_tag);
    if (result != seL4_NoError) {
        seL4_SetMR(0, mr[0]);
        seL4_SetMR(1, mr[1]);
        seL4_SetMR(2, mr[2]);
        seL4_SetMR(3, mr[3]);
    }
    return result;
}

#define CAPVISOR_U8(x) ((seL4_Word)(x) & 0xffull)
#define CAPVISOR_BOOL(x) ((seL4_Word)(x) & 0x1ull)

/* ---------------------------------------------------------------- Untyped */

LIBSEL4_INLINE seL4_Error seL4_Untyped_Retype(seL4_Untyped _service, seL4_Word type, seL4_Word size_bits,
                                              seL4_CNode root, seL4_Word node_index, seL4_Word node_depth,
                                              seL4_Word node_offset, seL4_Word num_objects)
{
    seL4_Word mr[4] = {type, size_bits, node_index, node_depth};
    seL4_SetCap(0, root);
    seL4_SetMR(4, node_offset);
    seL4_SetMR(5, num_objects);
    return capvisor_invoke(_service, UntypedRetype, 1, 6, mr);
}

/* ---------------------------------------------------------------- TCB */

/* Registers come back in seL4_UserContext order: pc, sp, spsr, x0 in MR0..MR3, the rest in MR4... */
LIBSEL4_INLINE seL4_Error seL4_TCB_ReadRegisters(seL4_TCB _service, seL4_Bool suspend_source, seL4_Uint8 arch_flags,
                                                 seL4_Word count, seL4_UserContext *regs)
{
    seL4_Word mr[4] = {CAPVISOR_BOOL(suspend_source) | (CAPVISOR_U8(arch_flags) << 8), count, 0, 0};
    seL4_Error result = capvisor_invoke(_service, TCBReadRegisters, 0, 2, mr);
    if (result != seL4_NoError) {
        return result;
    }
    regs->pc = mr[0];
    regs->sp = mr[1];
    regs->spsr = mr[2];
    regs->x0 = mr[3];
    for (seL4_Word i = 4; i < count; i++) {
        ((seL4_Word *)&regs->x1)[i - 4] = seL4_GetMR((int)i);
    }
    return result;
}

/* The message always says 38 words (flags, count, 36 registers); only `count` registers are sent. */
LIBSEL4_INLINE seL4_Error seL4_TCB_WriteRegisters(seL4_TCB _service, seL4_Bool resume_target, seL4_Uint8 arch_flags,
                                                  seL4_Word count, seL4_UserContext *regs)
{
    seL4_Word mr[4] = {CAPVISOR_BOOL(resume_target) | (CAPVISOR_U8(arch_flags) << 8), count, regs->pc, regs->sp};
    for (seL4_Word i = 2; i < count; i++) {
        seL4_SetMR((int)(i + 2), ((seL4_Word *)&regs->spsr)[i - 2]);
    }
    return capvisor_invoke(_service, TCBWriteRegisters, 0, 38, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_CopyRegisters(seL4_TCB _service, seL4_TCB source, seL4_Bool suspend_source,
                                                 seL4_Bool resume_target, seL4_Bool transfer_frame,
                                                 seL4_Bool transfer_integer, seL4_Uint8 arch_flags)
{
    seL4_Word mr[4] = {CAPVISOR_BOOL(suspend_source) | (CAPVISOR_BOOL(resume_target) << 1) |
                           (CAPVISOR_BOOL(transfer_frame) << 2) | (CAPVISOR_BOOL(transfer_integer) << 3) |
                           (CAPVISOR_U8(arch_flags) << 8),
                       0, 0, 0};
    seL4_SetCap(0, source);
    return capvisor_invoke(_service, TCBCopyRegisters, 1, 1, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_Configure(seL4_TCB _service, seL4_CNode cspace_root, seL4_Word cspace_root_data,
                                             seL4_CPtr vspace_root, seL4_Word vspace_root_data, seL4_Word buffer,
                                             seL4_CPtr bufferFrame)
{
    seL4_Word mr[4] = {cspace_root_data, vspace_root_data, buffer, 0};
    seL4_SetCap(0, cspace_root);
    seL4_SetCap(1, vspace_root);
    seL4_SetCap(2, bufferFrame);
    return capvisor_invoke(_service, TCBConfigure, 3, 3, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetPriority(seL4_TCB _service, seL4_TCB authority, seL4_Word priority)
{
    seL4_Word mr[4] = {priority, 0, 0, 0};
    seL4_SetCap(0, authority);
    return capvisor_invoke(_service, TCBSetPriority, 1, 1, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetMCPriority(seL4_TCB _service, seL4_TCB authority, seL4_Word mcp)
{
    seL4_Word mr[4] = {mcp, 0, 0, 0};
    seL4_SetCap(0, authority);
    return capvisor_invoke(_service, TCBSetMCPriority, 1, 1, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetSchedParams(seL4_TCB _service, seL4_TCB authority, seL4_Word mcp,
                                                  seL4_Word priority, seL4_CPtr sched_context, seL4_CPtr fault_ep)
{
    seL4_Word mr[4] = {mcp, priority, 0, 0};
    seL4_SetCap(0, authority);
    seL4_SetCap(1, sched_context);
    seL4_SetCap(2, fault_ep);
    return capvisor_invoke(_service, TCBSetSchedParams, 3, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetTimeoutEndpoint(seL4_TCB _service, seL4_CPtr timeout_fault_ep)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, timeout_fault_ep);
    return capvisor_invoke(_service, TCBSetTimeoutEndpoint, 1, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetIPCBuffer(seL4_TCB _service, seL4_Word buffer, seL4_CPtr bufferFrame)
{
    seL4_Word mr[4] = {buffer, 0, 0, 0};
    seL4_SetCap(0, bufferFrame);
    return capvisor_invoke(_service, TCBSetIPCBuffer, 1, 1, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetSpace(seL4_TCB _service, seL4_CPtr fault_ep, seL4_CNode cspace_root,
                                            seL4_Word cspace_root_data, seL4_CPtr vspace_root,
                                            seL4_Word vspace_root_data)
{
    seL4_Word mr[4] = {cspace_root_data, vspace_root_data, 0, 0};
    seL4_SetCap(0, fault_ep);
    seL4_SetCap(1, cspace_root);
    seL4_SetCap(2, vspace_root);
    return capvisor_invoke(_service, TCBSetSpace, 3, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_Suspend(seL4_TCB _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, TCBSuspend, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_Resume(seL4_TCB _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, TCBResume, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_BindNotification(seL4_TCB _service, seL4_CPtr notification)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, notification);
    return capvisor_invoke(_service, TCBBindNotification, 1, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_UnbindNotification(seL4_TCB _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, TCBUnbindNotification, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_TCB_SetTLSBase(seL4_TCB _service, seL4_Word tls_base)
{
    seL4_Word mr[4] = {tls_base, 0, 0, 0};
    return capvisor_invoke(_service, TCBSetTLSBase, 0, 1, mr);
}

typedef struct seL4_TCB_SetFlags {
    int error;
    seL4_Word flags;
} seL4_TCB_SetFlags_t;

LIBSEL4_INLINE seL4_TCB_SetFlags_t seL4_TCB_SetFlags(seL4_TCB _service, seL4_Word clear, seL4_Word set)
{
    seL4_TCB_SetFlags_t result = {0, 0};
    seL4_Word mr[4] = {clear, set, 0, 0};
    result.error = (int)capvisor_invoke(_service, TCBSetFlags, 0, 2, mr);
    if (result.error != seL4_NoError) {
        return result;
    }
    result.flags = mr[0];
    return result;
}

/* ---------------------------------------------------------------- CNode */

LIBSEL4_INLINE seL4_Error seL4_CNode_Revoke(seL4_CNode _service, seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {index, CAPVISOR_U8(depth), 0, 0};
    return capvisor_invoke(_service, CNodeRevoke, 0, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Delete(seL4_CNode _service, seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {index, CAPVISOR_U8(depth), 0, 0};
    return capvisor_invoke(_service, CNodeDelete, 0, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_CancelBadgedSends(seL4_CNode _service, seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {index, CAPVISOR_U8(depth), 0, 0};
    return capvisor_invoke(_service, CNodeCancelBadgedSends, 0, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Copy(seL4_CNode _service, seL4_Word dest_index, seL4_Uint8 dest_depth,
                                          seL4_CNode src_root, seL4_Word src_index, seL4_Uint8 src_depth,
                                          seL4_CapRights_t rights)
{
    seL4_Word mr[4] = {dest_index, CAPVISOR_U8(dest_depth), src_index, CAPVISOR_U8(src_depth)};
    seL4_SetCap(0, src_root);
    seL4_SetMR(4, rights.words[0]);
    return capvisor_invoke(_service, CNodeCopy, 1, 5, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Mint(seL4_CNode _service, seL4_Word dest_index, seL4_Uint8 dest_depth,
                                          seL4_CNode src_root, seL4_Word src_index, seL4_Uint8 src_depth,
                                          seL4_CapRights_t rights, seL4_Word badge)
{
    seL4_Word mr[4] = {dest_index, CAPVISOR_U8(dest_depth), src_index, CAPVISOR_U8(src_depth)};
    seL4_SetCap(0, src_root);
    seL4_SetMR(4, rights.words[0]);
    seL4_SetMR(5, badge);
    return capvisor_invoke(_service, CNodeMint, 1, 6, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Move(seL4_CNode _service, seL4_Word dest_index, seL4_Uint8 dest_depth,
                                          seL4_CNode src_root, seL4_Word src_index, seL4_Uint8 src_depth)
{
    seL4_Word mr[4] = {dest_index, CAPVISOR_U8(dest_depth), src_index, CAPVISOR_U8(src_depth)};
    seL4_SetCap(0, src_root);
    return capvisor_invoke(_service, CNodeMove, 1, 4, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Mutate(seL4_CNode _service, seL4_Word dest_index, seL4_Uint8 dest_depth,
                                            seL4_CNode src_root, seL4_Word src_index, seL4_Uint8 src_depth,
                                            seL4_Word badge)
{
    seL4_Word mr[4] = {dest_index, CAPVISOR_U8(dest_depth), src_index, CAPVISOR_U8(src_depth)};
    seL4_SetCap(0, src_root);
    seL4_SetMR(4, badge);
    return capvisor_invoke(_service, CNodeMutate, 1, 5, mr);
}

LIBSEL4_INLINE seL4_Error seL4_CNode_Rotate(seL4_CNode _service, seL4_Word dest_index, seL4_Uint8 dest_depth,
                                            seL4_Word dest_badge, seL4_CNode pivot_root, seL4_Word pivot_index,
                                            seL4_Uint8 pivot_depth, seL4_Word pivot_badge, seL4_CNode src_root,
                                            seL4_Word src_index, seL4_Uint8 src_depth)
{
    seL4_Word mr[4] = {dest_index, CAPVISOR_U8(dest_depth), dest_badge, pivot_index};
    seL4_SetCap(0, pivot_root);
    seL4_SetCap(1, src_root);
    seL4_SetMR(4, CAPVISOR_U8(pivot_depth));
    seL4_SetMR(5, pivot_badge);
    seL4_SetMR(6, src_index);
    seL4_SetMR(7, CAPVISOR_U8(src_depth));
    return capvisor_invoke(_service, CNodeRotate, 2, 8, mr);
}

/* ---------------------------------------------------------------- IRQ */

LIBSEL4_INLINE seL4_Error seL4_IRQControl_Get(seL4_IRQControl _service, seL4_Word irq, seL4_CNode root,
                                              seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {irq, index, CAPVISOR_U8(depth), 0};
    seL4_SetCap(0, root);
    return capvisor_invoke(_service, IRQIssueIRQHandler, 1, 3, mr);
}

LIBSEL4_INLINE seL4_Error seL4_IRQControl_GetTrigger(seL4_IRQControl _service, seL4_Word irq, seL4_Word trigger,
                                                     seL4_CNode root, seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {irq, trigger, index, CAPVISOR_U8(depth)};
    seL4_SetCap(0, root);
    return capvisor_invoke(_service, ARMIRQIssueIRQHandlerTrigger, 1, 4, mr);
}

LIBSEL4_INLINE seL4_Error seL4_IRQHandler_Ack(seL4_IRQHandler _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, IRQAckIRQ, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_IRQHandler_SetNotification(seL4_IRQHandler _service, seL4_CPtr notification)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, notification);
    return capvisor_invoke(_service, IRQSetIRQHandler, 1, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_IRQHandler_Clear(seL4_IRQHandler _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, IRQClearIRQHandler, 0, 0, mr);
}

/* ---------------------------------------------------------------- Domain */

LIBSEL4_INLINE seL4_Error seL4_DomainSet_Set(seL4_DomainSet _service, seL4_Uint8 domain, seL4_TCB thread)
{
    seL4_Word mr[4] = {CAPVISOR_U8(domain), 0, 0, 0};
    seL4_SetCap(0, thread);
    return capvisor_invoke(_service, DomainSetSet, 1, 1, mr);
}

/* ---------------------------------------------------------------- scheduling contexts (MCS) */

LIBSEL4_INLINE seL4_Error seL4_SchedControl_ConfigureFlags(seL4_SchedControl _service, seL4_SchedContext schedcontext,
                                                           seL4_Time budget, seL4_Time period,
                                                           seL4_Word extra_refills, seL4_Word badge, seL4_Word flags)
{
    seL4_Word mr[4] = {budget, period, extra_refills, badge};
    seL4_SetCap(0, schedcontext);
    seL4_SetMR(4, flags);
    return capvisor_invoke(_service, SchedControlConfigureFlags, 1, 5, mr);
}

/* libsel4's virtual_client.h: Configure is ConfigureFlags without flags. */
LIBSEL4_INLINE seL4_Error seL4_SchedControl_Configure(seL4_SchedControl _service, seL4_SchedContext schedcontext,
                                                      seL4_Time budget, seL4_Time period, seL4_Word extra_refills,
                                                      seL4_Word badge)
{
    return seL4_SchedControl_ConfigureFlags(_service, schedcontext, budget, period, extra_refills, badge,
                                            seL4_SchedContext_NoFlag);
}

LIBSEL4_INLINE seL4_Error seL4_SchedContext_Bind(seL4_SchedContext _service, seL4_CPtr cap)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, cap);
    return capvisor_invoke(_service, SchedContextBind, 1, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_SchedContext_Unbind(seL4_SchedContext _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, SchedContextUnbind, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_SchedContext_UnbindObject(seL4_SchedContext _service, seL4_CPtr cap)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, cap);
    return capvisor_invoke(_service, SchedContextUnbindObject, 1, 0, mr);
}

typedef struct seL4_SchedContext_Consumed {
    int error;
    seL4_Time consumed;
} seL4_SchedContext_Consumed_t;

LIBSEL4_INLINE seL4_SchedContext_Consumed_t seL4_SchedContext_Consumed(seL4_SchedContext _service)
{
    seL4_SchedContext_Consumed_t result = {0, 0};
    seL4_Word mr[4] = {0, 0, 0, 0};
    result.error = (int)capvisor_invoke(_service, SchedContextConsumed, 0, 0, mr);
    if (result.error != seL4_NoError) {
        return result;
    }
    result.consumed = mr[0];
    return result;
}

typedef struct seL4_SchedContext_YieldTo {
    int error;
    seL4_Time consumed;
} seL4_SchedContext_YieldTo_t;

LIBSEL4_INLINE seL4_SchedContext_YieldTo_t seL4_SchedContext_YieldTo(seL4_SchedContext _service)
{
    seL4_SchedContext_YieldTo_t result = {0, 0};
    seL4_Word mr[4] = {0, 0, 0, 0};
    result.error = (int)capvisor_invoke(_service, SchedContextYieldTo, 0, 0, mr);
    if (result.error != seL4_NoError) {
        return result;
    }
    result.consumed = mr[0];
    return result;
}

/* ---------------------------------------------------------------- AArch64 virtual memory */

LIBSEL4_INLINE seL4_Error seL4_ARM_VSpace_Clean_Data(seL4_ARM_VSpace _service, seL4_Word start, seL4_Word end)
{
    seL4_Word mr[4] = {start, end, 0, 0};
    return capvisor_invoke(_service, ARMVSpaceClean_Data, 0, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_PageTable_Map(seL4_ARM_PageTable _service, seL4_CPtr vspace, seL4_Word vaddr,
                                                 seL4_ARM_VMAttributes attr)
{
    seL4_Word mr[4] = {vaddr, (seL4_Word)attr, 0, 0};
    seL4_SetCap(0, vspace);
    return capvisor_invoke(_service, ARMPageTableMap, 1, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_PageTable_Unmap(seL4_ARM_PageTable _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, ARMPageTableUnmap, 0, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_Page_Map(seL4_ARM_Page _service, seL4_CPtr vspace, seL4_Word vaddr,
                                            seL4_CapRights_t rights, seL4_ARM_VMAttributes attr)
{
    seL4_Word mr[4] = {vaddr, rights.words[0], (seL4_Word)attr, 0};
    seL4_SetCap(0, vspace);
    return capvisor_invoke(_service, ARMPageMap, 1, 3, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_Page_Unmap(seL4_ARM_Page _service)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    return capvisor_invoke(_service, ARMPageUnmap, 0, 0, mr);
}

typedef struct seL4_ARM_Page_GetAddress {
    int error;
    seL4_Word paddr;
} seL4_ARM_Page_GetAddress_t;

LIBSEL4_INLINE seL4_ARM_Page_GetAddress_t seL4_ARM_Page_GetAddress(seL4_ARM_Page _service)
{
    seL4_ARM_Page_GetAddress_t result = {0, 0};
    seL4_Word mr[4] = {0, 0, 0, 0};
    result.error = (int)capvisor_invoke(_service, ARMPageGetAddress, 0, 0, mr);
    if (result.error != seL4_NoError) {
        return result;
    }
    result.paddr = mr[0];
    return result;
}

LIBSEL4_INLINE seL4_Error seL4_ARM_ASIDControl_MakePool(seL4_ARM_ASIDControl _service, seL4_Untyped untyped,
                                                        seL4_CNode root, seL4_Word index, seL4_Uint8 depth)
{
    seL4_Word mr[4] = {index, CAPVISOR_U8(depth), 0, 0};
    seL4_SetCap(0, untyped);
    seL4_SetCap(1, root);
    return capvisor_invoke(_service, ARMASIDControlMakePool, 2, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_ASIDPool_Assign(seL4_ARM_ASIDPool _service, seL4_CPtr vspace)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, vspace);
    return capvisor_invoke(_service, ARMASIDPoolAssign, 1, 0, mr);
}

/* ---------------------------------------------------------------- AArch64 VCPU */

LIBSEL4_INLINE seL4_Error seL4_ARM_VCPU_SetTCB(seL4_ARM_VCPU _service, seL4_TCB tcb)
{
    seL4_Word mr[4] = {0, 0, 0, 0};
    seL4_SetCap(0, tcb);
    return capvisor_invoke(_service, ARMVCPUSetTCB, 1, 0, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_VCPU_InjectIRQ(seL4_ARM_VCPU _service, seL4_Uint16 virq, seL4_Uint8 priority,
                                                  seL4_Uint8 group, seL4_Uint8 index)
{
    seL4_Word mr[4] = {((seL4_Word)virq & 0xffffull) | (CAPVISOR_U8(priority) << 16) | (CAPVISOR_U8(group) << 24) |
                           (CAPVISOR_U8(index) << 32),
                       0, 0, 0};
    return capvisor_invoke(_service, ARMVCPUInjectIRQ, 0, 1, mr);
}

typedef struct seL4_ARM_VCPU_ReadRegs {
    int error;
    seL4_Word value;
} seL4_ARM_VCPU_ReadRegs_t;

LIBSEL4_INLINE seL4_ARM_VCPU_ReadRegs_t seL4_ARM_VCPU_ReadRegs(seL4_ARM_VCPU _service, seL4_VCPUReg field)
{
    seL4_ARM_VCPU_ReadRegs_t result = {0, 0};
    seL4_Word mr[4] = {field, 0, 0, 0};
    result.error = (int)capvisor_invoke(_service, ARMVCPUReadReg, 0, 1, mr);
    if (result.error != seL4_NoError) {
        return result;
    }
    result.value = mr[0];
    return result;
}

LIBSEL4_INLINE seL4_Error seL4_ARM_VCPU_WriteRegs(seL4_ARM_VCPU _service, seL4_VCPUReg field, seL4_Word value)
{
    seL4_Word mr[4] = {field, value, 0, 0};
    return capvisor_invoke(_service, ARMVCPUWriteReg, 0, 2, mr);
}

LIBSEL4_INLINE seL4_Error seL4_ARM_VCPU_AckVPPI(seL4_ARM_VCPU _service, seL4_Word irq)
{
    seL4_Word mr[4] = {irq, 0, 0, 0};
    return capvisor_invoke(_service, ARMVCPUAckVPPI, 0, 1, mr);
}
