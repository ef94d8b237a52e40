/*
 * capvisor libsel4 for wasm32 protection domains.
 *
 * The names, types and signatures are libsel4's (64-bit, MCS, AArch64 numbering), so seL4 user
 * code compiles unchanged with `clang --target=wasm32`. Only the way a syscall reaches the
 * kernel differs: instead of `svc #0` with x0..x8 in CPU registers, libsel4 writes the nine
 * registers into the register block (exported by `capvisor_regs()`), calls the imported
 * function `sel4.syscall(sysno)`, and reads the registers back, exactly as the AArch64 libsel4
 * uses x0..x8. See docs/wasm-abi.md.
 *
 * Written for capvisor from the published libsel4 interface; not a copy of libsel4's sources.
 */
#pragma once

#include <sel4/config.h>

/* ---------------------------------------------------------------- macros (sel4/macros.h) */

#ifndef CONST
#define CONST __attribute__((__const__))
#endif
#ifndef PURE
#define PURE __attribute__((__pure__))
#endif
#define SEL4_PACKED __attribute__((packed))
#define SEL4_DEPRECATED(x) __attribute__((deprecated(x)))
#define LIBSEL4_UNUSED __attribute__((unused))
#define LIBSEL4_WEAK __attribute__((weak))
#define LIBSEL4_NOINLINE __attribute__((noinline))
#define LIBSEL4_INLINE static inline
#define LIBSEL4_INLINE_FUNC static inline
#define LIBSEL4_THREAD_LOCAL
#define LIBSEL4_BIT(n) (1ull << (n))
#define SEL4_COMPILE_ASSERT(name, expr) _Static_assert(expr, #name);
#define SEL4_FORCE_LONG_ENUM(type) _enum_pad_##type = 0x7fffffff

/* ---------------------------------------------------------------- simple types */

typedef signed char seL4_Int8;
typedef unsigned char seL4_Uint8;
typedef signed short seL4_Int16;
typedef unsigned short seL4_Uint16;
typedef signed int seL4_Int32;
typedef unsigned int seL4_Uint32;
typedef signed long long seL4_Int64;
typedef unsigned long long seL4_Uint64;

typedef seL4_Int8 seL4_Bool;
#define seL4_True 1
#define seL4_False 0
#define seL4_Null ((void *)0)

/* A word is 64 bits even though wasm32 pointers are 32 (docs/wasm-abi.md, "Words"). */
typedef seL4_Uint64 seL4_Word;
typedef seL4_Word seL4_CPtr;
typedef seL4_Uint64 seL4_Time;
typedef seL4_Word seL4_NodeId;
typedef seL4_Word seL4_PAddr;
typedef seL4_Word seL4_Domain;

typedef seL4_CPtr seL4_CNode;
typedef seL4_CPtr seL4_IRQHandler;
typedef seL4_CPtr seL4_IRQControl;
typedef seL4_CPtr seL4_TCB;
typedef seL4_CPtr seL4_Untyped;
typedef seL4_CPtr seL4_DomainSet;
typedef seL4_CPtr seL4_SchedContext;
typedef seL4_CPtr seL4_SchedControl;

typedef seL4_CPtr seL4_ARM_Page;
typedef seL4_CPtr seL4_ARM_PageTable;
typedef seL4_CPtr seL4_ARM_VSpace;
typedef seL4_CPtr seL4_ARM_ASIDControl;
typedef seL4_CPtr seL4_ARM_ASIDPool;
typedef seL4_CPtr seL4_ARM_VCPU;

#define seL4_WordBits (sizeof(seL4_Word) * 8)
#define seL4_WordSizeBits 3

_Static_assert(sizeof(seL4_Word) == 8, "seL4_Word is 64 bits");

/* ---------------------------------------------------------------- errors (sel4/errors.h) */

typedef enum {
    seL4_NoError = 0,
    seL4_InvalidArgument = 1,
    seL4_InvalidCapability = 2,
    seL4_IllegalOperation = 3,
    seL4_RangeError = 4,
    seL4_AlignmentError = 5,
    seL4_FailedLookup = 6,
    seL4_TruncatedMessage = 7,
    seL4_DeleteFirst = 8,
    seL4_RevokeFirst = 9,
    seL4_NotEnoughMemory = 10,
    seL4_NumErrors
} seL4_Error;

/* ---------------------------------------------------------------- constants (sel4/constants.h) */

enum priorityConstants {
    seL4_InvalidPrio = -1,
    seL4_MinPrio = 0,
    seL4_MaxPrio = CONFIG_NUM_PRIORITIES - 1
};

enum seL4_MsgLimits {
    seL4_MsgLengthBits = 7,
    seL4_MsgExtraCapBits = 2,
    seL4_MsgMaxLength = 120
};
#define seL4_MsgMaxExtraCaps (LIBSEL4_BIT(seL4_MsgExtraCapBits) - 1)
#define seL4_CapRightsBits 4
#define seL4_FastMessageRegisters 4

typedef enum {
    seL4_NoFailure = 0,
    seL4_InvalidRoot,
    seL4_MissingCapability,
    seL4_DepthMismatch,
    seL4_GuardMismatch,
} seL4_LookupFailureType;

typedef enum {
    seL4_TCBFlag_NoFlag = 0x0,
    seL4_TCBFlag_fpuDisabled = 0x1,
    seL4_TCBFlag_MASK = seL4_TCBFlag_NoFlag,
} seL4_TCBFlag;

#define seL4_MinSchedContextBits 7
#define seL4_CoreSchedContextBytes (10 * sizeof(seL4_Word) + (6 * 8))
#define seL4_RefillSizeBytes (2 * 8)
static inline seL4_Word seL4_MaxExtraRefills(seL4_Word size)
{
    return (LIBSEL4_BIT(size) - seL4_CoreSchedContextBytes) / seL4_RefillSizeBytes;
}

typedef enum {
    seL4_SchedContext_NoFlag = 0x0,
    seL4_SchedContext_Sporadic = 0x1,
} seL4_SchedContextFlag;

/* AArch64 object sizes (sel4_arch/constants.h). */
#define seL4_DataFault 0
#define seL4_InstructionFault 1
#define seL4_PageBits 12
#define seL4_LargePageBits 21
#define seL4_HugePageBits 30
#define seL4_SlotBits 5
#define seL4_TCBBits 11
#define seL4_EndpointBits 4
#define seL4_NotificationBits 6
#define seL4_ReplyBits 5
#define seL4_PageTableBits 12
#define seL4_PageTableEntryBits 3
#define seL4_PageTableIndexBits 9
#define seL4_NumASIDPoolsBits 7
#define seL4_ASIDPoolBits 12
#define seL4_ASIDPoolIndexBits 9
#define seL4_VSpaceEntryBits 3
#define seL4_VSpaceBits 12
#define seL4_VSpaceIndexBits 9
#define seL4_ARM_VCPUBits 12
#define seL4_VCPUBits 12
#define seL4_MinUntypedBits 4
#define seL4_MaxUntypedBits 47
#define seL4_IPCBufferSizeBits 10
#define seL4_UserTop 0x00007fffffffffffull
#define seL4_UserVSpaceTop seL4_UserTop

/* Capabilities of the initial thread (sel4/bootinfo_types.h). */
enum seL4_RootCNodeCapSlots {
    seL4_CapNull = 0,
    seL4_CapInitThreadTCB = 1,
    seL4_CapInitThreadCNode = 2,
    seL4_CapInitThreadVSpace = 3,
    seL4_CapIRQControl = 4,
    seL4_CapASIDControl = 5,
    seL4_CapInitThreadASIDPool = 6,
    seL4_CapIOPortControl = 7,
    seL4_CapIOSpace = 8,
    seL4_CapBootInfoFrame = 9,
    seL4_CapInitThreadIPCBuffer = 10,
    seL4_CapDomain = 11,
    seL4_CapSMMUSIDControl = 12,
    seL4_CapSMMUCBControl = 13,
    seL4_CapInitThreadSC = 14,
    seL4_CapSMC = 15,
    seL4_NumInitialCaps = 16
};

/* ---------------------------------------------------------------- syscall numbers (api/syscall.xml, MCS) */

typedef enum {
    seL4_SysCall = -1,
    seL4_SysReplyRecv = -2,
    seL4_SysNBSendRecv = -3,
    seL4_SysNBSendWait = -4,
    seL4_SysSend = -5,
    seL4_SysNBSend = -6,
    seL4_SysRecv = -7,
    seL4_SysNBRecv = -8,
    seL4_SysWait = -9,
    seL4_SysNBWait = -10,
    seL4_SysYield = -11,
    seL4_SysDebugPutChar = -12,
    seL4_SysDebugDumpScheduler = -13,
    seL4_SysDebugHalt = -14,
    seL4_SysDebugCapIdentify = -15,
    seL4_SysDebugSnapshot = -16,
    seL4_SysDebugNameThread = -17,
} seL4_Syscall_ID;

/* ---------------------------------------------------------------- object types (objecttype.h, AArch64) */

typedef enum api_object {
    seL4_UntypedObject = 0,
    seL4_TCBObject = 1,
    seL4_EndpointObject = 2,
    seL4_NotificationObject = 3,
    seL4_CapTableObject = 4,
    seL4_SchedContextObject = 5,
    seL4_ReplyObject = 6,
    seL4_NonArchObjectTypeCount = 7,
} seL4_ObjectType;

typedef enum _mode_object {
    seL4_ARM_HugePageObject = seL4_NonArchObjectTypeCount, /* 7 */
    seL4_ARM_VSpaceObject,                                 /* 8 */
    seL4_ModeObjectTypeCount
} seL4_ModeObjectType;

typedef enum _object {
    seL4_ARM_SmallPageObject = seL4_ModeObjectTypeCount, /* 9 */
    seL4_ARM_LargePageObject,                            /* 10 */
    seL4_ARM_PageTableObject,                            /* 11 */
    seL4_ARM_VCPUObject,                                 /* 12 */
    seL4_ObjectTypeCount
} seL4_ArchObjectType;

typedef seL4_Word api_object_t;
typedef seL4_Word object_t;

/* ---------------------------------------------------------------- invocation labels */

/*
 * libsel4's generated order for MCS without SMP affinity or breakpoints, then the AArch64
 * labels capvisor implements (src/kernel/types.ts, enum Invocation). These numbers are ABI.
 */
enum invocation_label {
    InvalidInvocation = 0,
    UntypedRetype,
    TCBReadRegisters,
    TCBWriteRegisters,
    TCBCopyRegisters,
    TCBConfigure,
    TCBSetPriority,
    TCBSetMCPriority,
    TCBSetSchedParams,
    TCBSetTimeoutEndpoint,
    TCBSetIPCBuffer,
    TCBSetSpace,
    TCBSuspend,
    TCBResume,
    TCBBindNotification,
    TCBUnbindNotification,
    TCBSetAffinity,
    TCBSetTLSBase,
    TCBSetFlags,
    CNodeRevoke,
    CNodeDelete,
    CNodeCancelBadgedSends,
    CNodeCopy,
    CNodeMint,
    CNodeMove,
    CNodeMutate,
    CNodeRotate,
    IRQIssueIRQHandler,
    IRQAckIRQ,
    IRQSetIRQHandler,
    IRQClearIRQHandler,
    DomainSetSet,
    SchedControlConfigureFlags,
    SchedContextBind,
    SchedContextUnbind,
    SchedContextUnbindObject,
    SchedContextConsumed,
    SchedContextYieldTo,
    nInvocationLabels
};

enum arch_invocation_label {
    ARMVSpaceClean_Data = nInvocationLabels,
    ARMPageTableMap,
    ARMPageTableUnmap,
    ARMPageMap,
    ARMPageUnmap,
    ARMPageGetAddress,
    ARMASIDControlMakePool,
    ARMASIDPoolAssign,
    ARMVCPUSetTCB,
    ARMVCPUInjectIRQ,
    ARMVCPUReadReg,
    ARMVCPUWriteReg,
    ARMVCPUAckVPPI,
    ARMIRQIssueIRQHandlerTrigger,
    nArchInvocationLabels
};

_Static_assert(SchedContextYieldTo == 37, "invocation labels follow src/kernel/types.ts");
_Static_assert(ARMIRQIssueIRQHandlerTrigger == 51, "invocation labels follow src/kernel/types.ts");

/* ---------------------------------------------------------------- faults (shared_types.bf, MCS + ARM hyp) */

typedef enum {
    seL4_Fault_NullFault = 0,
    seL4_Fault_CapFault = 1,
    seL4_Fault_UnknownSyscall = 2,
    seL4_Fault_UserException = 3,
    seL4_Fault_DebugException = 4,
    seL4_Fault_Timeout = 5,
    seL4_Fault_VMFault = 6,
    seL4_Fault_VGICMaintenance = 7,
    seL4_Fault_VCPUFault = 8,
    seL4_Fault_VPPIEvent = 9,
} seL4_Fault_tag_t;

typedef enum {
    seL4_CapFault_IP,
    seL4_CapFault_Addr,
    seL4_CapFault_InRecvPhase,
    seL4_CapFault_LookupFailureType,
    seL4_CapFault_BitsLeft,
    seL4_CapFault_DepthMismatch_BitsFound,
    seL4_CapFault_GuardMismatch_GuardFound = seL4_CapFault_DepthMismatch_BitsFound,
    seL4_CapFault_GuardMismatch_BitsFound,
} seL4_CapFault_Msg;

typedef enum {
    seL4_UnknownSyscall_X0,
    seL4_UnknownSyscall_X1,
    seL4_UnknownSyscall_X2,
    seL4_UnknownSyscall_X3,
    seL4_UnknownSyscall_X4,
    seL4_UnknownSyscall_X5,
    seL4_UnknownSyscall_X6,
    seL4_UnknownSyscall_X7,
    seL4_UnknownSyscall_FaultIP,
    seL4_UnknownSyscall_SP,
    seL4_UnknownSyscall_LR,
    seL4_UnknownSyscall_SPSR,
    seL4_UnknownSyscall_Syscall,
    seL4_UnknownSyscall_Length,
} seL4_UnknownSyscall_Msg;

/*
 * A Wasm trap is a user exception: Number is the trap kind of docs/wasm-abi.md ("Traps"),
 * Code is 0.
 */
typedef enum {
    seL4_UserException_FaultIP,
    seL4_UserException_SP,
    seL4_UserException_SPSR,
    seL4_UserException_Number,
    seL4_UserException_Code,
    seL4_UserException_Length,
} seL4_UserException_Msg;

/* capvisor's trap numbers (docs/wasm-abi.md, "Traps"), found in MR seL4_UserException_Number. */
#define CAPVISOR_TRAP_UNREACHABLE 1
#define CAPVISOR_TRAP_OUT_OF_BOUNDS 2
#define CAPVISOR_TRAP_STACK_OVERFLOW 3
#define CAPVISOR_TRAP_DIVIDE 4
#define CAPVISOR_TRAP_CONVERSION 5
#define CAPVISOR_TRAP_INDIRECT_CALL 6
#define CAPVISOR_TRAP_OTHER 7

typedef enum {
    seL4_VMFault_IP,
    seL4_VMFault_Addr,
    seL4_VMFault_PrefetchFault,
    seL4_VMFault_FSR,
    seL4_VMFault_Length,
} seL4_VMFault_Msg;

typedef enum {
    seL4_VGICMaintenance_IDX,
    seL4_VGICMaintenance_Length,
} seL4_VGICMaintenance_Msg;

typedef enum {
    seL4_VPPIEvent_IRQ,
    seL4_VPPIEvent_Length,
} seL4_VPPIEvent_Msg;

typedef enum {
    seL4_VCPUFault_HSR,
    seL4_VCPUFault_Length,
} seL4_VCPUFault_Msg;

typedef enum {
    seL4_Timeout_Data,
    seL4_Timeout_Consumed,
    seL4_Timeout_Length,
} seL4_Timeout_Msg;

typedef enum {
    seL4_TimeoutReply_FaultIP,
    seL4_TimeoutReply_SP,
    seL4_TimeoutReply_SPSR_EL1,
    seL4_TimeoutReply_X0,
    seL4_TimeoutReply_X1,
    seL4_TimeoutReply_X2,
    seL4_TimeoutReply_X3,
    seL4_TimeoutReply_X4,
    seL4_TimeoutReply_X5,
    seL4_TimeoutReply_X6,
    seL4_TimeoutReply_X7,
    seL4_TimeoutReply_X8,
    seL4_TimeoutReply_X16,
    seL4_TimeoutReply_X17,
    seL4_TimeoutReply_X18,
    seL4_TimeoutReply_X29,
    seL4_TimeoutReply_X30,
    seL4_TimeoutReply_X9,
    seL4_TimeoutReply_X10,
    seL4_TimeoutReply_X11,
    seL4_TimeoutReply_X12,
    seL4_TimeoutReply_X13,
    seL4_TimeoutReply_X14,
    seL4_TimeoutReply_X15,
    seL4_TimeoutReply_X19,
    seL4_TimeoutReply_X20,
    seL4_TimeoutReply_X21,
    seL4_TimeoutReply_X22,
    seL4_TimeoutReply_X23,
    seL4_TimeoutReply_X24,
    seL4_TimeoutReply_X25,
    seL4_TimeoutReply_X26,
    seL4_TimeoutReply_X27,
    seL4_TimeoutReply_X28,
    seL4_TimeoutReply_Length,
} seL4_TimeoutReply_Msg;

/* ---------------------------------------------------------------- AArch64 types (sel4_arch/types.h) */

typedef struct seL4_UserContext_ {
    /* frame registers */
    seL4_Word pc, sp, spsr, x0, x1, x2, x3, x4, x5, x6, x7, x8, x16, x17, x18, x29, x30;
    /* other integer registers */
    seL4_Word x9, x10, x11, x12, x13, x14, x15, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    /* thread ID registers */
    seL4_Word tpidr_el0, tpidrro_el0;
} seL4_UserContext;

_Static_assert(sizeof(seL4_UserContext) == 36 * sizeof(seL4_Word), "36 registers");

typedef enum {
    seL4_ARM_PageCacheable = 0x01,
    seL4_ARM_ParityEnabled = 0x02,
    seL4_ARM_Default_VMAttributes = 0x03,
    seL4_ARM_ExecuteNever = 0x04,
} seL4_ARM_VMAttributes;

typedef enum {
    seL4_ARM_CacheI = 1,
    seL4_ARM_CacheD = 2,
    seL4_ARM_CacheID = 3,
} seL4_ARM_CacheType;

typedef enum {
    seL4_VCPUReg_SCTLR = 0,
    seL4_VCPUReg_CPACR,
    seL4_VCPUReg_TTBR0,
    seL4_VCPUReg_TTBR1,
    seL4_VCPUReg_TCR,
    seL4_VCPUReg_MAIR,
    seL4_VCPUReg_AMAIR,
    seL4_VCPUReg_CIDR,
    seL4_VCPUReg_ACTLR,
    seL4_VCPUReg_AFSR0,
    seL4_VCPUReg_AFSR1,
    seL4_VCPUReg_ESR,
    seL4_VCPUReg_FAR,
    seL4_VCPUReg_PAR,
    seL4_VCPUReg_VBAR,
    seL4_VCPUReg_TPIDR_EL1,
    seL4_VCPUReg_VMPIDR_EL2,
    seL4_VCPUReg_SP_EL1,
    seL4_VCPUReg_ELR_EL1,
    seL4_VCPUReg_SPSR_EL1,
    seL4_VCPUReg_CNTV_CTL,
    seL4_VCPUReg_CNTV_CVAL,
    seL4_VCPUReg_CNTVOFF,
    seL4_VCPUReg_CNTKCTL_EL1,
    seL4_VCPUReg_Num,
} seL4_VCPUReg_t;
typedef seL4_Word seL4_VCPUReg;

/* ---------------------------------------------------------------- bitfields (shared_types.bf) */

/* seL4_MessageInfo: label:52 | capsUnwrapped:3 | extraCaps:2 | length:7 */
typedef struct seL4_MessageInfo {
    seL4_Word words[1];
} seL4_MessageInfo_t;

static inline seL4_MessageInfo_t CONST
seL4_MessageInfo_new(seL4_Uint64 label, seL4_Uint64 capsUnwrapped, seL4_Uint64 extraCaps, seL4_Uint64 length)
{
    seL4_MessageInfo_t m;
    m.words[0] = ((label & 0xfffffffffffffull) << 12) | ((capsUnwrapped & 0x7ull) << 9) |
                 ((extraCaps & 0x3ull) << 7) | (length & 0x7full);
    return m;
}

static inline seL4_Uint64 CONST seL4_MessageInfo_get_label(seL4_MessageInfo_t m)
{
    return (m.words[0] >> 12) & 0xfffffffffffffull;
}
static inline seL4_Uint64 CONST seL4_MessageInfo_get_capsUnwrapped(seL4_MessageInfo_t m)
{
    return (m.words[0] >> 9) & 0x7ull;
}
static inline seL4_Uint64 CONST seL4_MessageInfo_get_extraCaps(seL4_MessageInfo_t m)
{
    return (m.words[0] >> 7) & 0x3ull;
}
static inline seL4_Uint64 CONST seL4_MessageInfo_get_length(seL4_MessageInfo_t m)
{
    return m.words[0] & 0x7full;
}
static inline seL4_MessageInfo_t CONST seL4_MessageInfo_set_label(seL4_MessageInfo_t m, seL4_Uint64 v)
{
    m.words[0] = (m.words[0] & ~(0xfffffffffffffull << 12)) | ((v & 0xfffffffffffffull) << 12);
    return m;
}
static inline seL4_MessageInfo_t CONST seL4_MessageInfo_set_capsUnwrapped(seL4_MessageInfo_t m, seL4_Uint64 v)
{
    m.words[0] = (m.words[0] & ~(0x7ull << 9)) | ((v & 0x7ull) << 9);
    return m;
}
static inline seL4_MessageInfo_t CONST seL4_MessageInfo_set_extraCaps(seL4_MessageInfo_t m, seL4_Uint64 v)
{
    m.words[0] = (m.words[0] & ~(0x3ull << 7)) | ((v & 0x3ull) << 7);
    return m;
}
static inline seL4_MessageInfo_t CONST seL4_MessageInfo_set_length(seL4_MessageInfo_t m, seL4_Uint64 v)
{
    m.words[0] = (m.words[0] & ~0x7full) | (v & 0x7full);
    return m;
}
static inline seL4_Uint64 PURE seL4_MessageInfo_ptr_get_label(seL4_MessageInfo_t *p)
{
    return seL4_MessageInfo_get_label(*p);
}
static inline seL4_Uint64 PURE seL4_MessageInfo_ptr_get_capsUnwrapped(seL4_MessageInfo_t *p)
{
    return seL4_MessageInfo_get_capsUnwrapped(*p);
}
static inline seL4_Uint64 PURE seL4_MessageInfo_ptr_get_extraCaps(seL4_MessageInfo_t *p)
{
    return seL4_MessageInfo_get_extraCaps(*p);
}
static inline seL4_Uint64 PURE seL4_MessageInfo_ptr_get_length(seL4_MessageInfo_t *p)
{
    return seL4_MessageInfo_get_length(*p);
}
static inline void seL4_MessageInfo_ptr_set_label(seL4_MessageInfo_t *p, seL4_Uint64 v)
{
    *p = seL4_MessageInfo_set_label(*p, v);
}
static inline void seL4_MessageInfo_ptr_set_capsUnwrapped(seL4_MessageInfo_t *p, seL4_Uint64 v)
{
    *p = seL4_MessageInfo_set_capsUnwrapped(*p, v);
}
static inline void seL4_MessageInfo_ptr_set_extraCaps(seL4_MessageInfo_t *p, seL4_Uint64 v)
{
    *p = seL4_MessageInfo_set_extraCaps(*p, v);
}
static inline void seL4_MessageInfo_ptr_set_length(seL4_MessageInfo_t *p, seL4_Uint64 v)
{
    *p = seL4_MessageInfo_set_length(*p, v);
}

/* seL4_CapRights: capAllowGrantReply (bit 3) | capAllowGrant (2) | capAllowRead (1) | capAllowWrite (0) */
typedef struct seL4_CapRights {
    seL4_Word words[1];
} seL4_CapRights_t;

static inline seL4_CapRights_t CONST seL4_CapRights_new(seL4_Uint64 capAllowGrantReply, seL4_Uint64 capAllowGrant,
                                                        seL4_Uint64 capAllowRead, seL4_Uint64 capAllowWrite)
{
    seL4_CapRights_t r;
    r.words[0] = ((capAllowGrantReply & 1ull) << 3) | ((capAllowGrant & 1ull) << 2) | ((capAllowRead & 1ull) << 1) |
                 (capAllowWrite & 1ull);
    return r;
}
static inline seL4_Uint64 CONST seL4_CapRights_get_capAllowGrantReply(seL4_CapRights_t r)
{
    return (r.words[0] >> 3) & 1ull;
}
static inline seL4_Uint64 CONST seL4_CapRights_get_capAllowGrant(seL4_CapRights_t r)
{
    return (r.words[0] >> 2) & 1ull;
}
static inline seL4_Uint64 CONST seL4_CapRights_get_capAllowRead(seL4_CapRights_t r)
{
    return (r.words[0] >> 1) & 1ull;
}
static inline seL4_Uint64 CONST seL4_CapRights_get_capAllowWrite(seL4_CapRights_t r)
{
    return r.words[0] & 1ull;
}
static inline seL4_CapRights_t CONST seL4_CapRights_set_capAllowGrantReply(seL4_CapRights_t r, seL4_Uint64 v)
{
    r.words[0] = (r.words[0] & ~(1ull << 3)) | ((v & 1ull) << 3);
    return r;
}
static inline seL4_CapRights_t CONST seL4_CapRights_set_capAllowGrant(seL4_CapRights_t r, seL4_Uint64 v)
{
    r.words[0] = (r.words[0] & ~(1ull << 2)) | ((v & 1ull) << 2);
    return r;
}
static inline seL4_CapRights_t CONST seL4_CapRights_set_capAllowRead(seL4_CapRights_t r, seL4_Uint64 v)
{
    r.words[0] = (r.words[0] & ~(1ull << 1)) | ((v & 1ull) << 1);
    return r;
}
static inline seL4_CapRights_t CONST seL4_CapRights_set_capAllowWrite(seL4_CapRights_t r, seL4_Uint64 v)
{
    r.words[0] = (r.words[0] & ~1ull) | (v & 1ull);
    return r;
}

#define seL4_ReadWrite seL4_CapRights_new(0, 0, 1, 1)
#define seL4_AllRights seL4_CapRights_new(1, 1, 1, 1)
#define seL4_CanRead seL4_CapRights_new(0, 0, 1, 0)
#define seL4_CanWrite seL4_CapRights_new(0, 0, 0, 1)
#define seL4_CanGrant seL4_CapRights_new(0, 1, 0, 0)
#define seL4_CanGrantReply seL4_CapRights_new(1, 0, 0, 0)
#define seL4_NoWrite seL4_CapRights_new(1, 1, 1, 0)
#define seL4_NoRead seL4_CapRights_new(1, 1, 0, 1)
#define seL4_NoRights seL4_CapRights_new(0, 0, 0, 0)

/* seL4_CNode_CapData: guard:58 | guardSize:6 */
typedef struct seL4_CNode_CapData {
    seL4_Word words[1];
} seL4_CNode_CapData_t;

static inline seL4_CNode_CapData_t CONST seL4_CNode_CapData_new(seL4_Uint64 guard, seL4_Uint64 guardSize)
{
    seL4_CNode_CapData_t d;
    d.words[0] = ((guard & 0x3ffffffffffffffull) << 6) | (guardSize & 0x3full);
    return d;
}
static inline seL4_Uint64 CONST seL4_CNode_CapData_get_guard(seL4_CNode_CapData_t d)
{
    return (d.words[0] >> 6) & 0x3ffffffffffffffull;
}
static inline seL4_Uint64 CONST seL4_CNode_CapData_get_guardSize(seL4_CNode_CapData_t d)
{
    return d.words[0] & 0x3full;
}

/* ---------------------------------------------------------------- IPC buffer (sel4/shared_types.h) */

typedef struct seL4_IPCBuffer_ {
    seL4_MessageInfo_t tag;
    seL4_Word msg[seL4_MsgMaxLength];
    seL4_Word userData;
    seL4_Word caps_or_badges[seL4_MsgMaxExtraCaps];
    seL4_CPtr receiveCNode;
    seL4_CPtr receiveIndex;
    seL4_Word receiveDepth;
} seL4_IPCBuffer __attribute__((__aligned__(sizeof(struct seL4_IPCBuffer_))));

_Static_assert(sizeof(seL4_IPCBuffer) == 1024, "the IPC buffer is 128 words");

/* ---------------------------------------------------------------- the capvisor register block */

/*
 * x0..x8 of the AArch64 syscall ABI, in memory (docs/wasm-abi.md, "The register block").
 * Defined by lib/sel4/sel4.c and published by the export `capvisor_regs()`. Volatile: the
 * runtime reads and writes it while `sel4.syscall` runs.
 */
extern volatile seL4_Word __capvisor_regs[9];

/* Enter the kernel. Returns when this thread runs again, with results in the block and IPC buffer. */
__attribute__((import_module("sel4"), import_name("syscall"))) void capvisor_syscall(int sysno);

/* The IPC buffer libsel4 uses (libsel4's own variable name); points at the exported buffer. */
extern seL4_IPCBuffer *__sel4_ipc_buffer;

#define CAPVISOR_X0 0
#define CAPVISOR_X1 1
#define CAPVISOR_X2 2
#define CAPVISOR_X6 6
#define CAPVISOR_X7 7
#define CAPVISOR_X8 8

/*
 * The helpers mirror the AArch64 libsel4's arm_sys_* register usage: what each writes before
 * the syscall and reads after is what the AArch64 inline assembly passes in and out.
 * x7 also gets the syscall number, as on AArch64, though the kernel takes it from the argument.
 */
static inline void capvisor_sys_send(seL4_Word sys, seL4_Word dest, seL4_Word info, seL4_Word mr0, seL4_Word mr1,
                                     seL4_Word mr2, seL4_Word mr3)
{
    volatile seL4_Word *r = __capvisor_regs;
    r[0] = dest;
    r[1] = info;
    r[2] = mr0;
    r[3] = mr1;
    r[4] = mr2;
    r[5] = mr3;
    r[7] = sys;
    capvisor_syscall((int)sys);
}

static inline void capvisor_sys_send_null(seL4_Word sys, seL4_Word dest, seL4_Word info)
{
    volatile seL4_Word *r = __capvisor_regs;
    r[0] = dest;
    r[1] = info;
    r[7] = sys;
    capvisor_syscall((int)sys);
}

static inline void capvisor_sys_recv(seL4_Word sys, seL4_Word src, seL4_Word *out_badge, seL4_Word *out_info,
                                     seL4_Word *out_mr0, seL4_Word *out_mr1, seL4_Word *out_mr2, seL4_Word *out_mr3,
                                     seL4_Word reply)
{
    volatile seL4_Word *r = __capvisor_regs;
    r[0] = src;
    r[6] = reply;
    r[7] = sys;
    capvisor_syscall((int)sys);
    *out_badge = r[0];
    *out_info = r[1];
    *out_mr0 = r[2];
    *out_mr1 = r[3];
    *out_mr2 = r[4];
    *out_mr3 = r[5];
}

static inline void capvisor_sys_send_recv(seL4_Word sys, seL4_Word dest, seL4_Word *out_badge, seL4_Word info,
                                          seL4_Word *out_info, seL4_Word *in_out_mr0, seL4_Word *in_out_mr1,
                                          seL4_Word *in_out_mr2, seL4_Word *in_out_mr3, seL4_Word reply)
{
    volatile seL4_Word *r = __capvisor_regs;
    r[0] = dest;
    r[1] = info;
    r[2] = *in_out_mr0;
    r[3] = *in_out_mr1;
    r[4] = *in_out_mr2;
    r[5] = *in_out_mr3;
    r[6] = reply;
    r[7] = sys;
    capvisor_syscall((int)sys);
    *out_info = r[1];
    *out_badge = r[0];
    *in_out_mr0 = r[2];
    *in_out_mr1 = r[3];
    *in_out_mr2 = r[4];
    *in_out_mr3 = r[5];
}

static inline void capvisor_sys_nbsend_recv(seL4_Word sys, seL4_Word dest, seL4_Word src, seL4_Word *out_badge,
                                            seL4_Word info, seL4_Word *out_info, seL4_Word *in_out_mr0,
                                            seL4_Word *in_out_mr1, seL4_Word *in_out_mr2, seL4_Word *in_out_mr3,
                                            seL4_Word reply)
{
    volatile seL4_Word *r = __capvisor_regs;
    r[0] = src;
    r[1] = info;
    r[2] = *in_out_mr0;
    r[3] = *in_out_mr1;
    r[4] = *in_out_mr2;
    r[5] = *in_out_mr3;
    r[6] = reply;
    r[7] = sys;
    r[8] = dest;
    capvisor_syscall((int)sys);
    *out_badge = r[0];
    *out_info = r[1];
    *in_out_mr0 = r[2];
    *in_out_mr1 = r[3];
    *in_out_mr2 = r[4];
    *in_out_mr3 = r[5];
}

static inline void capvisor_sys_null(seL4_Word sys)
{
    __capvisor_regs[7] = sys;
    capvisor_syscall((int)sys);
}

/* ---------------------------------------------------------------- IPC buffer access (sel4/functions.h) */

static inline void seL4_SetIPCBuffer(seL4_IPCBuffer *ipc_buffer)
{
    __sel4_ipc_buffer = ipc_buffer;
}

static inline seL4_IPCBuffer *seL4_GetIPCBuffer(void)
{
    return __sel4_ipc_buffer;
}

static inline seL4_Word seL4_GetMR(int i)
{
    return seL4_GetIPCBuffer()->msg[i];
}

static inline void seL4_SetMR(int i, seL4_Word mr)
{
    seL4_GetIPCBuffer()->msg[i] = mr;
}

static inline seL4_Word seL4_GetUserData(void)
{
    return seL4_GetIPCBuffer()->userData;
}

static inline void seL4_SetUserData(seL4_Word data)
{
    seL4_GetIPCBuffer()->userData = data;
}

static inline seL4_Word seL4_GetBadge(int i)
{
    return seL4_GetIPCBuffer()->caps_or_badges[i];
}

static inline seL4_CPtr seL4_GetCap(int i)
{
    return (seL4_CPtr)seL4_GetIPCBuffer()->caps_or_badges[i];
}

static inline void seL4_SetCap(int i, seL4_CPtr cptr)
{
    seL4_GetIPCBuffer()->caps_or_badges[i] = (seL4_Word)cptr;
}

static inline void seL4_GetCapReceivePath(seL4_CPtr *receiveCNode, seL4_CPtr *receiveIndex, seL4_Word *receiveDepth)
{
    seL4_IPCBuffer *b = seL4_GetIPCBuffer();
    if (receiveCNode != seL4_Null) {
        *receiveCNode = b->receiveCNode;
    }
    if (receiveIndex != seL4_Null) {
        *receiveIndex = b->receiveIndex;
    }
    if (receiveDepth != seL4_Null) {
        *receiveDepth = b->receiveDepth;
    }
}

static inline void seL4_SetCapReceivePath(seL4_CPtr receiveCNode, seL4_CPtr receiveIndex, seL4_Word receiveDepth)
{
    seL4_IPCBuffer *b = seL4_GetIPCBuffer();
    b->receiveCNode = receiveCNode;
    b->receiveIndex = receiveIndex;
    b->receiveDepth = receiveDepth;
}

/* ---------------------------------------------------------------- syscalls (arch/syscalls.h, MCS) */

#define CAPVISOR_MR_OR_0(p, n, info) \
    (((p) != seL4_Null && seL4_MessageInfo_get_length(info) > (n)) ? *(p) : 0)

static inline void seL4_Send(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    capvisor_sys_send((seL4_Word)seL4_SysSend, dest, msgInfo.words[0], seL4_GetMR(0), seL4_GetMR(1), seL4_GetMR(2),
                      seL4_GetMR(3));
}

static inline void seL4_SendWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_Word *mr0, seL4_Word *mr1,
                                    seL4_Word *mr2, seL4_Word *mr3)
{
    capvisor_sys_send((seL4_Word)seL4_SysSend, dest, msgInfo.words[0], CAPVISOR_MR_OR_0(mr0, 0, msgInfo),
                      CAPVISOR_MR_OR_0(mr1, 1, msgInfo), CAPVISOR_MR_OR_0(mr2, 2, msgInfo),
                      CAPVISOR_MR_OR_0(mr3, 3, msgInfo));
}

static inline void seL4_NBSend(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    capvisor_sys_send((seL4_Word)seL4_SysNBSend, dest, msgInfo.words[0], seL4_GetMR(0), seL4_GetMR(1), seL4_GetMR(2),
                      seL4_GetMR(3));
}

static inline void seL4_NBSendWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_Word *mr0, seL4_Word *mr1,
                                      seL4_Word *mr2, seL4_Word *mr3)
{
    capvisor_sys_send((seL4_Word)seL4_SysNBSend, dest, msgInfo.words[0], CAPVISOR_MR_OR_0(mr0, 0, msgInfo),
                      CAPVISOR_MR_OR_0(mr1, 1, msgInfo), CAPVISOR_MR_OR_0(mr2, 2, msgInfo),
                      CAPVISOR_MR_OR_0(mr3, 3, msgInfo));
}

/* Signal is a Send of an empty message (used on notifications). */
static inline void seL4_Signal(seL4_CPtr dest)
{
    capvisor_sys_send_null((seL4_Word)seL4_SysSend, dest, seL4_MessageInfo_new(0, 0, 0, 0).words[0]);
}

static inline seL4_MessageInfo_t capvisor_recv_common(seL4_Word sys, seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply)
{
    seL4_MessageInfo_t info;
    seL4_Word badge, msg0, msg1, msg2, msg3;
    capvisor_sys_recv(sys, src, &badge, &info.words[0], &msg0, &msg1, &msg2, &msg3, reply);
    seL4_SetMR(0, msg0);
    seL4_SetMR(1, msg1);
    seL4_SetMR(2, msg2);
    seL4_SetMR(3, msg3);
    if (sender) {
        *sender = badge;
    }
    return info;
}

static inline seL4_MessageInfo_t capvisor_recv_mrs(seL4_Word sys, seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply,
                                                   seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_MessageInfo_t info;
    seL4_Word badge, msg0 = 0, msg1 = 0, msg2 = 0, msg3 = 0;
    capvisor_sys_recv(sys, src, &badge, &info.words[0], &msg0, &msg1, &msg2, &msg3, reply);
    if (mr0 != seL4_Null) {
        *mr0 = msg0;
    }
    if (mr1 != seL4_Null) {
        *mr1 = msg1;
    }
    if (mr2 != seL4_Null) {
        *mr2 = msg2;
    }
    if (mr3 != seL4_Null) {
        *mr3 = msg3;
    }
    if (sender) {
        *sender = badge;
    }
    return info;
}

static inline seL4_MessageInfo_t seL4_Recv(seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply)
{
    return capvisor_recv_common((seL4_Word)seL4_SysRecv, src, sender, reply);
}

static inline seL4_MessageInfo_t seL4_RecvWithMRs(seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply, seL4_Word *mr0,
                                                  seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3)
{
    return capvisor_recv_mrs((seL4_Word)seL4_SysRecv, src, sender, reply, mr0, mr1, mr2, mr3);
}

static inline seL4_MessageInfo_t seL4_NBRecv(seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply)
{
    return capvisor_recv_common((seL4_Word)seL4_SysNBRecv, src, sender, reply);
}

static inline seL4_MessageInfo_t seL4_Wait(seL4_CPtr src, seL4_Word *sender)
{
    return capvisor_recv_common((seL4_Word)seL4_SysWait, src, sender, 0);
}

static inline seL4_MessageInfo_t seL4_WaitWithMRs(seL4_CPtr src, seL4_Word *sender, seL4_Word *mr0, seL4_Word *mr1,
                                                  seL4_Word *mr2, seL4_Word *mr3)
{
    return capvisor_recv_mrs((seL4_Word)seL4_SysWait, src, sender, 0, mr0, mr1, mr2, mr3);
}

static inline seL4_MessageInfo_t seL4_NBWait(seL4_CPtr src, seL4_Word *sender)
{
    return capvisor_recv_common((seL4_Word)seL4_SysNBWait, src, sender, 0);
}

/* Poll is NBWait under MCS. */
static inline seL4_MessageInfo_t seL4_Poll(seL4_CPtr src, seL4_Word *sender)
{
    return seL4_NBWait(src, sender);
}

static inline seL4_MessageInfo_t seL4_Call(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    seL4_MessageInfo_t info;
    seL4_Word msg0 = seL4_GetMR(0);
    seL4_Word msg1 = seL4_GetMR(1);
    seL4_Word msg2 = seL4_GetMR(2);
    seL4_Word msg3 = seL4_GetMR(3);
    capvisor_sys_send_recv((seL4_Word)seL4_SysCall, dest, &dest, msgInfo.words[0], &info.words[0], &msg0, &msg1,
                           &msg2, &msg3, 0);
    seL4_SetMR(0, msg0);
    seL4_SetMR(1, msg1);
    seL4_SetMR(2, msg2);
    seL4_SetMR(3, msg3);
    return info;
}

static inline seL4_MessageInfo_t seL4_CallWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_Word *mr0,
                                                  seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_MessageInfo_t info;
    seL4_Word msg0 = CAPVISOR_MR_OR_0(mr0, 0, msgInfo);
    seL4_Word msg1 = CAPVISOR_MR_OR_0(mr1, 1, msgInfo);
    seL4_Word msg2 = CAPVISOR_MR_OR_0(mr2, 2, msgInfo);
    seL4_Word msg3 = CAPVISOR_MR_OR_0(mr3, 3, msgInfo);
    capvisor_sys_send_recv((seL4_Word)seL4_SysCall, dest, &dest, msgInfo.words[0], &info.words[0], &msg0, &msg1,
                           &msg2, &msg3, 0);
    if (mr0 != seL4_Null) {
        *mr0 = msg0;
    }
    if (mr1 != seL4_Null) {
        *mr1 = msg1;
    }
    if (mr2 != seL4_Null) {
        *mr2 = msg2;
    }
    if (mr3 != seL4_Null) {
        *mr3 = msg3;
    }
    return info;
}

static inline seL4_MessageInfo_t seL4_ReplyRecv(seL4_CPtr src, seL4_MessageInfo_t msgInfo, seL4_Word *sender,
                                                seL4_CPtr reply)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = seL4_GetMR(0);
    seL4_Word msg1 = seL4_GetMR(1);
    seL4_Word msg2 = seL4_GetMR(2);
    seL4_Word msg3 = seL4_GetMR(3);
    capvisor_sys_send_recv((seL4_Word)seL4_SysReplyRecv, src, &badge, msgInfo.words[0], &info.words[0], &msg0, &msg1,
                           &msg2, &msg3, reply);
    seL4_SetMR(0, msg0);
    seL4_SetMR(1, msg1);
    seL4_SetMR(2, msg2);
    seL4_SetMR(3, msg3);
    if (sender) {
        *sender = badge;
    }
    return info;
}

static inline seL4_MessageInfo_t seL4_ReplyRecvWithMRs(seL4_CPtr src, seL4_MessageInfo_t msgInfo, seL4_Word *sender,
                                                       seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3,
                                                       seL4_CPtr reply)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = CAPVISOR_MR_OR_0(mr0, 0, msgInfo);
    seL4_Word msg1 = CAPVISOR_MR_OR_0(mr1, 1, msgInfo);
    seL4_Word msg2 = CAPVISOR_MR_OR_0(mr2, 2, msgInfo);
    seL4_Word msg3 = CAPVISOR_MR_OR_0(mr3, 3, msgInfo);
    capvisor_sys_send_recv((seL4_Word)seL4_SysReplyRecv, src, &badge, msgInfo.words[0], &info.words[0], &msg0, &msg1,
                           &msg2, &msg3, reply);
    if (mr0 != seL4_Null) {
        *mr0 = msg0;
    }
    if (mr1 != seL4_Null) {
        *mr1 = msg1;
    }
    if (mr2 != seL4_Null) {
        *mr2 = msg2;
    }
    if (mr3 != seL4_Null) {
        *mr3 = msg3;
    }
    if (sender) {
        *sender = badge;
    }
    return info;
}

/* NBSendRecv: the send destination travels in x8, the receive source in x0, the reply in x6. */
static inline seL4_MessageInfo_t seL4_NBSendRecv(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_CPtr src,
                                                 seL4_Word *sender, seL4_CPtr reply)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = seL4_GetMR(0);
    seL4_Word msg1 = seL4_GetMR(1);
    seL4_Word msg2 = seL4_GetMR(2);
    seL4_Word msg3 = seL4_GetMR(3);
    capvisor_sys_nbsend_recv((seL4_Word)seL4_SysNBSendRecv, dest, src, &badge, msgInfo.words[0], &info.words[0], &msg0,
                             &msg1, &msg2, &msg3, reply);
    seL4_SetMR(0, msg0);
    seL4_SetMR(1, msg1);
    seL4_SetMR(2, msg2);
    seL4_SetMR(3, msg3);
    if (sender) {
        *sender = badge;
    }
    return info;
}

static inline seL4_MessageInfo_t seL4_NBSendRecvWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_CPtr src,
                                                        seL4_Word *sender, seL4_Word *mr0, seL4_Word *mr1,
                                                        seL4_Word *mr2, seL4_Word *mr3, seL4_CPtr reply)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = CAPVISOR_MR_OR_0(mr0, 0, msgInfo);
    seL4_Word msg1 = CAPVISOR_MR_OR_0(mr1, 1, msgInfo);
    seL4_Word msg2 = CAPVISOR_MR_OR_0(mr2, 2, msgInfo);
    seL4_Word msg3 = CAPVISOR_MR_OR_0(mr3, 3, msgInfo);
    capvisor_sys_nbsend_recv((seL4_Word)seL4_SysNBSendRecv, dest, src, &badge, msgInfo.words[0], &info.words[0], &msg0,
                             &msg1, &msg2, &msg3, reply);
    if (mr0 != seL4_Null) {
        *mr0 = msg0;
    }
    if (mr1 != seL4_Null) {
        *mr1 = msg1;
    }
    if (mr2 != seL4_Null) {
        *mr2 = msg2;
    }
    if (mr3 != seL4_Null) {
        *mr3 = msg3;
    }
    if (sender) {
        *sender = badge;
    }
    return info;
}

/*
 * NBSendWait: as on AArch64, the send destination travels in x6 (the reply register; a Wait
 * has no reply) and x8 is 0. The kernel reads x6 for NBSendWait.
 */
static inline seL4_MessageInfo_t seL4_NBSendWait(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_CPtr src,
                                                 seL4_Word *sender)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = seL4_GetMR(0);
    seL4_Word msg1 = seL4_GetMR(1);
    seL4_Word msg2 = seL4_GetMR(2);
    seL4_Word msg3 = seL4_GetMR(3);
    capvisor_sys_nbsend_recv((seL4_Word)seL4_SysNBSendWait, 0, src, &badge, msgInfo.words[0], &info.words[0], &msg0,
                             &msg1, &msg2, &msg3, dest);
    seL4_SetMR(0, msg0);
    seL4_SetMR(1, msg1);
    seL4_SetMR(2, msg2);
    seL4_SetMR(3, msg3);
    if (sender) {
        *sender = badge;
    }
    return info;
}

/*
 * As seL4_NBSendWait, with the first four message registers passed by pointer. (The AArch64
 * libsel4 issues SysNBSendRecv here; capvisor issues SysNBSendWait, which is what the call means.)
 */
static inline seL4_MessageInfo_t seL4_NBSendWaitWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_CPtr src,
                                                        seL4_Word *sender, seL4_Word *mr0, seL4_Word *mr1,
                                                        seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_MessageInfo_t info;
    seL4_Word badge;
    seL4_Word msg0 = CAPVISOR_MR_OR_0(mr0, 0, msgInfo);
    seL4_Word msg1 = CAPVISOR_MR_OR_0(mr1, 1, msgInfo);
    seL4_Word msg2 = CAPVISOR_MR_OR_0(mr2, 2, msgInfo);
    seL4_Word msg3 = CAPVISOR_MR_OR_0(mr3, 3, msgInfo);
    capvisor_sys_nbsend_recv((seL4_Word)seL4_SysNBSendWait, 0, src, &badge, msgInfo.words[0], &info.words[0], &msg0,
                             &msg1, &msg2, &msg3, dest);
    if (mr0 != seL4_Null) {
        *mr0 = msg0;
    }
    if (mr1 != seL4_Null) {
        *mr1 = msg1;
    }
    if (mr2 != seL4_Null) {
        *mr2 = msg2;
    }
    if (mr3 != seL4_Null) {
        *mr3 = msg3;
    }
    if (sender) {
        *sender = badge;
    }
    return info;
}

static inline void seL4_Yield(void)
{
    capvisor_sys_null((seL4_Word)seL4_SysYield);
}

/* ---------------------------------------------------------------- debug syscalls */

/* The character travels in x0; the kernel prints its low byte. */
static inline void seL4_DebugPutChar(char c)
{
    seL4_Word unused0 = 0, unused1 = 0, unused2 = 0, unused3 = 0, unused4 = 0, unused5 = 0;
    capvisor_sys_send_recv((seL4_Word)seL4_SysDebugPutChar, (seL4_Word)(unsigned char)c, &unused0, 0, &unused1,
                           &unused2, &unused3, &unused4, &unused5, 0);
}

static inline void seL4_DebugPutString(char *str)
{
    for (char *s = str; *s; s++) {
        seL4_DebugPutChar(*s);
    }
}

static inline void seL4_DebugDumpScheduler(void)
{
    seL4_Word unused0 = 0, unused1 = 0, unused2 = 0, unused3 = 0, unused4 = 0, unused5 = 0;
    capvisor_sys_send_recv((seL4_Word)seL4_SysDebugDumpScheduler, 0, &unused0, 0, &unused1, &unused2, &unused3,
                           &unused4, &unused5, 0);
}

static inline void seL4_DebugHalt(void)
{
    capvisor_sys_null((seL4_Word)seL4_SysDebugHalt);
}

static inline void seL4_DebugSnapshot(void)
{
    capvisor_sys_null((seL4_Word)seL4_SysDebugSnapshot);
}

static inline seL4_Uint32 seL4_DebugCapIdentify(seL4_CPtr cap)
{
    seL4_Word unused0 = 0, unused1 = 0, unused2 = 0, unused3 = 0, unused4 = 0;
    capvisor_sys_send_recv((seL4_Word)seL4_SysDebugCapIdentify, cap, &cap, 0, &unused0, &unused1, &unused2, &unused3,
                           &unused4, 0);
    return (seL4_Uint32)cap;
}

/* The name goes NUL-terminated into the IPC buffer's message words; the TCB cap in x0. */
static inline void seL4_DebugNameThread(seL4_CPtr tcb, const char *name)
{
    char *dst = (char *)seL4_GetIPCBuffer()->msg;
    seL4_Word i = 0;
    while (name[i] != 0 && i < sizeof(seL4_GetIPCBuffer()->msg) - 1) {
        dst[i] = name[i];
        i++;
    }
    dst[i] = 0;
    seL4_Word unused0 = 0, unused1 = 0, unused2 = 0, unused3 = 0, unused4 = 0, unused5 = 0;
    capvisor_sys_send_recv((seL4_Word)seL4_SysDebugNameThread, tcb, &unused0, 0, &unused1, &unused2, &unused3,
                           &unused4, &unused5, 0);
}

/* ---------------------------------------------------------------- invocation stubs */

#include <sel4/invocations.h>
