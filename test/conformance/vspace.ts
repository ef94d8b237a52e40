/**
 * Conformance rows about address spaces and faults: fault messages delivered to a fault handler
 * (PAGEFAULT*), threads in other VSpaces and CSpaces and ASID pools (VSPACE*), frames as IPC
 * buffers and frame deletion (FRAMEDIPC*), and access to whole frames (FRAMEEXPORTS0001).
 *
 * Each test boots its own kernel and runs a root task (and helper threads or processes) on the
 * Machine, checking what seL4's manual says a user observes: error codes and their payloads, fault
 * messages in seL4's AArch64 layouts (libsel4 sel4_arch/constants.h), badges and thread states.
 */
import assert from "node:assert/strict";
import { bootKernel } from "../../src/kernel/core/boot.js";
import { checkInvariants } from "../../src/kernel/invariants.js";
import type { Kernel } from "../../src/kernel/state.js";
import { type TCB, VSpace } from "../../src/kernel/structures.js";
import {
  CapType,
  FaultType,
  INSTRUCTION_SIZE,
  LookupFailure,
  NUM_REGISTERS,
  ObjectType,
  REG_PC,
  REG_SP,
  REG_SPSR,
  REG_SYSCALL,
  REG_X0,
  SeL4Error,
  TCB_CTABLE,
  ThreadState,
} from "../../src/kernel/types.js";
import { Allocator, createThread, mapPage, startThread } from "../../src/pd/alloc.js";
import {
  type RecvResult,
  type Sel4Gen,
  seL4_AllRights,
  seL4_ARM_Default_VMAttributes,
  seL4_Call,
  seL4_CapASIDControl,
  seL4_CapInitThreadASIDPool,
  seL4_CapInitThreadCNode,
  seL4_CapInitThreadTCB,
  seL4_CapInitThreadVSpace,
  seL4_GetMR,
  seL4_MessageInfo_get_label,
  seL4_MessageInfo_get_length,
  seL4_MessageInfo_new,
  seL4_ReadWrite,
  seL4_Recv,
  seL4_Send,
  seL4_SetMR,
  seL4_Wait,
  setRegWord,
  type Word,
} from "../../src/pd/libsel4.js";
import {
  seL4_ARM_ASIDControl_MakePool,
  seL4_ARM_ASIDPool_Assign,
  seL4_ARM_Page_Map,
  seL4_CNode_Copy,
  seL4_CNode_Delete,
  seL4_CNode_Mint,
  seL4_CNode_Revoke,
  seL4_SchedControl_ConfigureFlags,
  seL4_TCB_Configure,
  seL4_TCB_ReadRegisters,
  seL4_TCB_SetIPCBuffer,
  seL4_TCB_SetPriority,
  seL4_TCB_SetSchedParams,
  seL4_TCB_WriteRegisters,
  seL4_Untyped_Retype,
} from "../../src/pd/libsel4-invocations.js";
import { EXIT_FAULT_NUMBER, Machine, SYSCALL, type UserThread } from "../../src/pd/machine.js";
import { conformance } from "./rows.js";

// ---- constants (sel4test faults.c, libsel4 AArch64 headers) ----

/** An unmapped address above 4 GiB, inside the 39-bit user address space, so both halves of MRs matter. */
const BAD_VADDR = 0x7e_dcba_9870;
const GOOD_MAGIC = 0x15831851;
const BAD_MAGIC = ~GOOD_MAGIC >>> 0;
const BAD_SYSCALL_NUMBER = 0xc1;
const EXPECTED_BADGE = 0xabababa;
/** The faulter's stack pointer (no memory behind it is needed) and the one a handler installs. */
const FAULTER_SP = 0x40_0000_7ff0;
const NEW_SP = 0x40_0000_6ff0;
/** AArch64 ESR of an undefined instruction: EC 0 (unknown reason), IL = 32-bit instruction, ISS 0. */
const ESR_UNDEFINED = 0x0200_0000;
/** seL4 PSTATE_USER on AArch64: EL0t with FIQ and SError masked. */
const PSTATE_USER = 0x140;
/** Expected ESR values of aborts from EL0, translation fault, with the level bits [1:0] cleared. */
const ESR_DATA_READ = 0x9200_0004;
const ESR_DATA_WRITE = 0x9200_0044;
const ESR_INSTRUCTION = 0x8200_0004;
/** Fault message lengths (seL4_VMFault_Length, seL4_UnknownSyscall_Length, seL4_UserException_Length). */
const VM_FAULT_LENGTH = 4;
const UNKNOWN_SYSCALL_LENGTH = 13;
const USER_EXCEPTION_LENGTH = 5;
/** Where a process's IPC buffer is mapped in its own VSpace. */
const PROC_IPC_VADDR = 0x20_0000;
/** Radix of a process's CNode; its cap has guard 64 - radix, so small cptrs name slots directly. */
const PROC_CNODE_BITS = 6;

function newMachine(k: Kernel): Machine {
  return new Machine(k, { afterEachEntry: (kk) => checkInvariants(kk) });
}

/** The TCB object a root-CNode cptr names (kernel state, for checking thread states). */
function tcbAt(k: Kernel, cptr: number): TCB {
  const cap = k.rootCNode.slot(cptr).cap;
  assert.equal(cap.type, CapType.Thread);
  return cap.obj as TCB;
}

function mrs(u: UserThread, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(seL4_GetMR(u, i));
  return out;
}

function check(what: string, err: SeL4Error): void {
  assert.equal(err, SeL4Error.NoError, `${what}: ${SeL4Error[err]}`);
}

interface Process {
  tcb: number;
  cnode: number;
  vspace: number;
  sc: number;
  /** Slot (= cptr in the process's CSpace) of each copied cap, in order. */
  caps: number[];
}

interface ProcessOptions {
  entry: number;
  args?: readonly Word[];
  sp?: Word;
  priority?: number;
  faultEp?: number;
  /** ASID pool to assign the VSpace from (default: the root task's pool). */
  pool?: number;
  /** Caps of the root CNode copied into slots 1, 2, ... of the process's CNode. */
  copy?: readonly number[];
  /** Frames to map into the process's VSpace (read-write) before it starts. */
  maps?: readonly { frame: number; vaddr: number }[];
  resume?: boolean;
}

/**
 * A thread in its own CSpace and VSpace (sel4test's create_helper_process): a CNode, a VSpace with
 * an ASID from `pool`, an IPC buffer mapped in it, a scheduling context, then start it.
 */
function* createProcess(u: UserThread, a: Allocator, o: ProcessOptions): Sel4Gen<Process> {
  const cnode = yield* a.alloc(u, ObjectType.CapTable, PROC_CNODE_BITS);
  const vspace = yield* a.alloc(u, ObjectType.VSpace);
  check("ASIDPool_Assign", yield* seL4_ARM_ASIDPool_Assign(u, o.pool ?? seL4_CapInitThreadASIDPool, vspace));
  const ipc = yield* a.alloc(u, ObjectType.SmallPage);
  check(
    "map IPC buffer",
    yield* mapPage(u, a, ipc, PROC_IPC_VADDR, seL4_ReadWrite, seL4_ARM_Default_VMAttributes, vspace),
  );
  for (const mp of o.maps ?? []) {
    check(
      "map frame",
      yield* mapPage(u, a, mp.frame, mp.vaddr, seL4_ReadWrite, seL4_ARM_Default_VMAttributes, vspace),
    );
  }
  const caps: number[] = [];
  for (const [i, src] of (o.copy ?? []).entries()) {
    check(
      "copy cap",
      yield* seL4_CNode_Copy(
        u,
        cnode,
        i + 1,
        PROC_CNODE_BITS,
        seL4_CapInitThreadCNode,
        src,
        64,
        seL4_AllRights,
      ),
    );
    caps.push(i + 1);
  }
  const tcb = yield* a.alloc(u, ObjectType.TCB);
  // cspace_root_data: guard size 64 - radix in the low 6 bits, guard 0.
  check(
    "TCB_Configure",
    yield* seL4_TCB_Configure(u, tcb, cnode, 64 - PROC_CNODE_BITS, vspace, 0, PROC_IPC_VADDR, ipc),
  );
  const sc = yield* a.alloc(u, ObjectType.SchedContext);
  check(
    "SchedControl_Configure",
    yield* seL4_SchedControl_ConfigureFlags(u, a.schedControl, sc, 1000, 1000, 0, 0, 0),
  );
  const prio = o.priority ?? 100;
  check(
    "TCB_SetSchedParams",
    yield* seL4_TCB_SetSchedParams(u, tcb, seL4_CapInitThreadTCB, prio, prio, sc, o.faultEp ?? 0),
  );
  check("start", yield* startThread(u, tcb, o.entry, o.args ?? [], o.resume ?? true, o.sp ?? 0));
  return { tcb, cnode, vspace, sc, caps };
}

/** A badged copy of an endpoint in a fresh root slot. */
function* mintBadged(u: UserThread, a: Allocator, ep: number, badge: number): Sel4Gen<number> {
  const slot = a.slot();
  check(
    "Mint",
    yield* seL4_CNode_Mint(
      u,
      seL4_CapInitThreadCNode,
      slot,
      64,
      seL4_CapInitThreadCNode,
      ep,
      64,
      seL4_AllRights,
      badge,
    ),
  );
  return slot;
}

/** Receive the exit fault of a helper (wait_for_helper): checks it is one and returns its code. */
function* waitExit(u: UserThread, ep: number, reply: number, badge: number): Sel4Gen<RecvResult> {
  const r = yield* seL4_Recv(u, ep, reply);
  assert.equal(seL4_MessageInfo_get_label(r.info), FaultType.UserException, "an exit fault");
  assert.equal(seL4_MessageInfo_get_length(r.info), USER_EXCEPTION_LENGTH);
  assert.equal(seL4_GetMR(u, 3), EXIT_FAULT_NUMBER);
  assert.equal(r.sender, badge);
  return r;
}

// ---- PAGEFAULT rows (sel4test faults.c test_fault) ----

type FaultKind = "read" | "write" | "execute" | "syscall" | "instruction";

/**
 * One fault row: for an unbadged and a badged fault endpoint, for a handler that restarts the
 * faulter and one that does not, and for a faulter below, at and above the handler's priority,
 * the faulter causes the fault; the handler checks the message, changes the faulter's registers
 * (through TCB_WriteRegisters for VM faults, through the reply for the others) and maybe replies.
 * A restarted faulter resumes at a new program whose exit fault reports x0 and sp.
 */
function faultRow(kind: FaultKind, interAS: boolean): void {
  const k = bootKernel();
  const m = newMachine(k);
  let handled = 0;
  let restarted = 0;

  // The code the handler redirects the faulter to: its exit fault reports x0 as the exit code.
  const resumeAt = m.program(function* (u: UserThread, x0: number) {
    yield* u.compute(0);
    return x0;
  });
  const cause = m.program(function* (u: UserThread) {
    switch (kind) {
      case "read":
        yield* u.read(BAD_VADDR, 8);
        break;
      case "write":
        yield* u.write64(BAD_VADDR, BigInt(BAD_MAGIC));
        break;
      case "syscall":
        // x0 = BAD_MAGIC, x1..x6 distinct, x7 = the syscall number, then `svc #0`.
        for (let i = 1; i < 7; i++) setRegWord(u.tcb, REG_X0 + i, 0x1000_0000_0000 + i);
        setRegWord(u.tcb, REG_X0, BAD_MAGIC);
        setRegWord(u.tcb, REG_SYSCALL, BAD_SYSCALL_NUMBER);
        yield SYSCALL;
        break;
      case "instruction":
        yield* u.exception(ESR_UNDEFINED, 0);
        break;
      case "execute":
        break;
    }
    throw new Error(`${kind}: the faulting instruction completed`);
  });
  // The execute fault: the faulter jumps to BAD_VADDR, where nothing is mapped.
  const faulterEntry = kind === "execute" ? BAD_VADDR : cause;
  const faultIP = kind === "execute" ? BAD_VADDR : cause + INSTRUCTION_SIZE;

  const handle = m.program(function* (
    u: UserThread,
    faultEp: number,
    faulter: number,
    reply: number,
    flags: number,
  ) {
    const badged = (flags & 1) !== 0;
    const restart = (flags & 2) !== 0;
    const r = yield* seL4_Recv(u, faultEp, reply);
    assert.equal(r.sender, badged ? EXPECTED_BADGE : 0, "badge of the fault endpoint");
    const label = seL4_MessageInfo_get_label(r.info);
    const length = seL4_MessageInfo_get_length(r.info);
    handled++;
    if (kind === "read" || kind === "write" || kind === "execute") {
      assert.equal(label, FaultType.VMFault);
      assert.equal(length, VM_FAULT_LENGTH);
      const [ip, addr, prefetch, fsr] = mrs(u, 4) as [number, number, number, number];
      assert.equal(ip, faultIP, "seL4_VMFault_IP");
      assert.equal(addr, BAD_VADDR, "seL4_VMFault_Addr");
      assert.equal(prefetch, kind === "execute" ? 1 : 0, "seL4_VMFault_PrefetchFault");
      const esr = kind === "read" ? ESR_DATA_READ : kind === "write" ? ESR_DATA_WRITE : ESR_INSTRUCTION;
      assert.equal((fsr & ~3) >>> 0, esr, `seL4_VMFault_FSR ${fsr.toString(16)}`);
      seL4_SetMR(u, 1, 0);
      // set_good_magic_and_set_pc: the faulter's registers, through ReadRegisters / WriteRegisters.
      const rr = yield* seL4_TCB_ReadRegisters(u, faulter, false, 0, NUM_REGISTERS);
      check("ReadRegisters", rr.error);
      assert.equal(rr.regs[REG_PC], BigInt(faultIP));
      assert.equal(rr.regs[REG_SP], BigInt(FAULTER_SP));
      assert.equal(rr.regs[REG_X0], BigInt(BAD_MAGIC));
      const regs = rr.regs.slice();
      regs[REG_PC] = BigInt(resumeAt);
      regs[REG_X0] = BigInt(GOOD_MAGIC);
      check("WriteRegisters", yield* seL4_TCB_WriteRegisters(u, faulter, false, 0, NUM_REGISTERS, regs));
      if (restart) yield* seL4_Send(u, reply, r.info);
      return 0;
    }
    if (kind === "syscall") {
      assert.equal(label, FaultType.UnknownSyscall);
      assert.equal(length, UNKNOWN_SYSCALL_LENGTH);
      // seL4_UnknownSyscall_X0..X7, FaultIP, SP, LR (ELR: the next pc), SPSR, Syscall.
      assert.deepEqual(mrs(u, UNKNOWN_SYSCALL_LENGTH), [
        BAD_MAGIC,
        0x1000_0000_0001,
        0x1000_0000_0002,
        0x1000_0000_0003,
        0x1000_0000_0004,
        0x1000_0000_0005,
        0x1000_0000_0006,
        BAD_SYSCALL_NUMBER,
        faultIP,
        FAULTER_SP,
        faultIP + INSTRUCTION_SIZE,
        PSTATE_USER,
        BAD_SYSCALL_NUMBER,
      ]);
      seL4_SetMR(u, 8, resumeAt);
      seL4_SetMR(u, 0, GOOD_MAGIC);
    } else {
      assert.equal(label, FaultType.UserException);
      assert.equal(length, USER_EXCEPTION_LENGTH);
      // seL4_UserException_FaultIP, SP, SPSR, Number, Code.
      assert.deepEqual(mrs(u, USER_EXCEPTION_LENGTH), [faultIP, FAULTER_SP, PSTATE_USER, ESR_UNDEFINED, 0]);
      seL4_SetMR(u, 0, resumeAt);
      seL4_SetMR(u, 1, NEW_SP);
    }
    // Label 0 restarts the faulter; any other label leaves it inactive (registers still written).
    yield* seL4_Send(u, reply, seL4_MessageInfo_new(restart ? 0 : 1, 0, 0, length));
    return 0;
  });

  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const rootReply = yield* a.alloc(u, ObjectType.Reply);
    const doneEp = yield* a.alloc(u, ObjectType.Endpoint);
    for (let badged = 0; badged <= 1; badged++) {
      const ep = yield* a.alloc(u, ObjectType.Endpoint);
      const faultEp = badged ? yield* mintBadged(u, a, ep, EXPECTED_BADGE) : ep;
      let faulterTcb: number;
      let handlerTcb: number;
      let hArgs: [number, number, number];
      if (interAS) {
        const faulter = yield* createProcess(u, a, {
          entry: faulterEntry,
          faultEp,
          resume: false,
        });
        const handler = yield* createProcess(u, a, {
          entry: handle,
          priority: 101,
          faultEp: doneEp,
          copy: [faultEp, faulter.tcb, reply],
          resume: false,
        });
        faulterTcb = faulter.tcb;
        handlerTcb = handler.tcb;
        hArgs = handler.caps as [number, number, number];
        // Nothing of the root's is reachable from the faulter: BAD_VADDR is unmapped there too.
      } else {
        const faulter = yield* createThread(u, a, { entry: faulterEntry, faultEp, resume: false });
        const handler = yield* createThread(u, a, {
          entry: handle,
          priority: 101,
          faultEp: doneEp,
          resume: false,
        });
        faulterTcb = faulter.tcb;
        handlerTcb = handler.tcb;
        hArgs = [faultEp, faulterTcb, reply];
      }
      for (let restart = 0; restart <= 1; restart++) {
        const flags = badged | (restart << 1);
        for (let prio = 100; prio <= 102; prio++) {
          check("SetPriority", yield* seL4_TCB_SetPriority(u, faulterTcb, seL4_CapInitThreadTCB, prio));
          check("start handler", yield* startThread(u, handlerTcb, handle, [...hArgs, flags]));
          check(
            "start faulter",
            yield* startThread(u, faulterTcb, faulterEntry, [BAD_MAGIC], true, FAULTER_SP),
          );
          // wait_for_helper(handler): its exit fault, code 0.
          yield* waitExit(u, doneEp, rootReply, 0);
          assert.equal(seL4_GetMR(u, 4), 0, "handler exit code");
          const ft = tcbAt(k, faulterTcb);
          if (restart) {
            // The faulter resumed at resumeAt: its exit fault reports where, sp and x0.
            yield* waitExit(u, ep, rootReply, badged ? EXPECTED_BADGE : 0);
            restarted++;
            const [ip, sp] = mrs(u, 2) as [number, number];
            assert.equal(ip, resumeAt + INSTRUCTION_SIZE, "resumed where the handler said");
            if (kind === "instruction") {
              assert.equal(sp, NEW_SP, "sp from the reply");
              assert.equal(seL4_GetMR(u, 4), BAD_MAGIC, "x0 unchanged");
            } else {
              assert.equal(sp, FAULTER_SP);
              assert.equal(seL4_GetMR(u, 4), GOOD_MAGIC, "x0 from the handler");
            }
          } else if (kind === "syscall" || kind === "instruction") {
            // A reply with a non-zero label does not restart the thread: it is left inactive,
            // with the registers the reply carried.
            assert.equal(ft.state, ThreadState.Inactive);
            const rr = yield* seL4_TCB_ReadRegisters(u, faulterTcb, false, 0, NUM_REGISTERS);
            check("ReadRegisters", rr.error);
            assert.equal(rr.regs[REG_PC], BigInt(resumeAt), "FaultIP from the reply");
            if (kind === "syscall") assert.equal(rr.regs[REG_X0], BigInt(GOOD_MAGIC));
            else assert.equal(rr.regs[REG_SP], BigInt(NEW_SP));
            assert.equal(rr.regs[REG_SPSR], BigInt(PSTATE_USER));
          } else {
            // No reply to a VM fault: the faulter waits for one.
            assert.equal(ft.state, ThreadState.BlockedOnReply);
            const rr = yield* seL4_TCB_ReadRegisters(u, faulterTcb, false, 0, NUM_REGISTERS);
            assert.equal(rr.regs[REG_PC], BigInt(resumeAt));
            assert.equal(rr.regs[REG_X0], BigInt(GOOD_MAGIC));
          }
        }
      }
    }
  });
  const r = m.run({ maxSteps: 1_000_000 });
  assert.equal(r.reason, "idle");
  assert.equal(handled, 12, "faults handled");
  assert.equal(restarted, 6, "faulters restarted");
  assert.equal(k.rootThread.state, ThreadState.Inactive, "the root task ran to its end");
}

conformance("PAGEFAULT0001", () => faultRow("read", false));
conformance("PAGEFAULT0002", () => faultRow("write", false));
conformance("PAGEFAULT0003", () => faultRow("execute", false));
conformance("PAGEFAULT0004", () => faultRow("syscall", false));
conformance("PAGEFAULT0005", () => faultRow("instruction", false));
conformance("PAGEFAULT1001", () => faultRow("read", true));
conformance("PAGEFAULT1002", () => faultRow("write", true));
conformance("PAGEFAULT1003", () => faultRow("execute", true));
conformance("PAGEFAULT1004", () => faultRow("syscall", true));

/** Run a root task to completion and check it got there. */
function runRoot(k: Kernel, m: Machine, fn: (u: UserThread, a: Allocator) => Sel4Gen<void>): void {
  let done = false;
  m.runRoot(function* (u: UserThread) {
    const a = new Allocator(k.bootInfo);
    yield* fn(u, a);
    done = true;
  });
  const r = m.run({ maxSteps: 2_000_000 });
  assert.equal(r.reason, "idle");
  assert.ok(done, "the root task finished");
}

// ---- VSPACE rows (sel4test vspace.c) ----

conformance("VSPACE0000", () => {
  const k = bootKernel();
  const m = newMachine(k);
  const X = 0x1000_0000;
  // The remote function: return what it reads at X in its VSpace, or invoke cptr `c` in its
  // CSpace and return the error.
  const remote = m.program(function* (u: UserThread, mode: number, c: number) {
    if (mode === 0) return (yield* u.read32(X)) ?? -1;
    const info = yield* seL4_Call(u, c, seL4_MessageInfo_new(0, 0, 0, 0));
    return seL4_MessageInfo_get_label(info);
  });
  runRoot(k, m, function* (u, a) {
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    // Frame A at X in the root VSpace holds 1; frame B at X in the process's VSpace holds 42.
    const fa = yield* a.alloc(u, ObjectType.SmallPage);
    const fb = yield* a.alloc(u, ObjectType.SmallPage);
    check("map A", yield* mapPage(u, a, fa, X));
    const y = a.vaddr(1);
    check("map B", yield* mapPage(u, a, fb, y));
    assert.ok(yield* u.write32(X, 1));
    assert.ok(yield* u.write32(y, 42));
    // A frame cap maps once: the process's mapping goes through a copy.
    const fbCopy = a.slot();
    check(
      "copy B",
      yield* seL4_CNode_Copy(
        u,
        seL4_CapInitThreadCNode,
        fbCopy,
        64,
        seL4_CapInitThreadCNode,
        fb,
        64,
        seL4_AllRights,
      ),
    );
    const p = yield* createProcess(u, a, {
      entry: remote,
      args: [0],
      faultEp: ep,
      maps: [{ frame: fbCopy, vaddr: X }],
    });
    yield* waitExit(u, ep, reply, 0);
    assert.equal(seL4_GetMR(u, 4), 42, "the process reads its own frame at X");
    assert.equal(yield* u.read32(X), 1, "the root still sees its own");
    assert.notEqual(tcbAt(k, p.tcb).ctes[TCB_CTABLE]!.cap.obj, k.rootCNode);
    // Its CSpace is not the root's: slot 5 (ASIDControl for the root) is empty there, and
    // invoking an empty slot is an InvalidCapability error.
    check("restart", yield* startThread(u, p.tcb, remote, [1, seL4_CapASIDControl]));
    yield* waitExit(u, ep, reply, 0);
    assert.equal(seL4_GetMR(u, 4), SeL4Error.InvalidCapability);
    // A cptr naming an endpoint in the root (4096 slots) does not resolve in a 64-slot CNode whose
    // guard is 58 zero bits: a cap fault with a guard mismatch.
    const cptr = 4000;
    check(
      "copy ep",
      yield* seL4_CNode_Copy(
        u,
        seL4_CapInitThreadCNode,
        cptr,
        64,
        seL4_CapInitThreadCNode,
        ep,
        64,
        seL4_AllRights,
      ),
    );
    check("restart", yield* startThread(u, p.tcb, remote, [1, cptr]));
    const r = yield* seL4_Recv(u, ep, reply);
    assert.equal(seL4_MessageInfo_get_label(r.info), FaultType.CapFault);
    // seL4_CapFault_IP, _Addr, _InRecvPhase, _LookupFailureType, _BitsLeft, _GuardMismatch_GuardFound,
    // _GuardMismatch_BitsFound.
    assert.deepEqual(mrs(u, seL4_MessageInfo_get_length(r.info)), [
      remote + INSTRUCTION_SIZE,
      cptr,
      0,
      LookupFailure.GuardMismatch,
      64,
      0,
      64 - PROC_CNODE_BITS,
    ]);
  });
});

/** A 4 KiB untyped for an ASID pool. */
function* poolUntyped(u: UserThread, a: Allocator): Sel4Gen<number> {
  return yield* a.alloc(u, ObjectType.Untyped, 12);
}

function* makePool(u: UserThread, a: Allocator): Sel4Gen<{ err: SeL4Error; slot: number }> {
  const ut = yield* poolUntyped(u, a);
  const slot = a.slot();
  const err = yield* seL4_ARM_ASIDControl_MakePool(
    u,
    seL4_CapASIDControl,
    ut,
    seL4_CapInitThreadCNode,
    slot,
    64,
  );
  return { err, slot };
}

conformance("VSPACE0002", () => {
  const k = bootKernel();
  const m = newMachine(k);
  runRoot(k, m, function* (u, a) {
    // Wrong untyped size: InvalidCapability, naming cap 1 as seL4 does.
    const big = yield* a.alloc(u, ObjectType.Untyped, 13);
    const s0 = a.slot();
    assert.equal(
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, big, seL4_CapInitThreadCNode, s0, 64),
      SeL4Error.InvalidCapability,
    );
    assert.equal(seL4_GetMR(u, 0), 1);
    // Occupied destination: DeleteFirst.
    const ut = yield* poolUntyped(u, a);
    assert.equal(
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, ut, seL4_CapInitThreadCNode, big, 64),
      SeL4Error.DeleteFirst,
    );
    const pool = a.slot();
    check(
      "MakePool",
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, ut, seL4_CapInitThreadCNode, pool, 64),
    );
    // The untyped now has a child: it cannot be used again.
    const s1 = a.slot();
    assert.equal(
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, ut, seL4_CapInitThreadCNode, s1, 64),
      SeL4Error.RevokeFirst,
    );
    assert.equal(k.rootCNode.slot(pool).cap.type, CapType.ASIDPool);
    // The root VSpace already has an ASID.
    assert.equal(
      yield* seL4_ARM_ASIDPool_Assign(u, pool, seL4_CapInitThreadVSpace),
      SeL4Error.InvalidCapability,
    );
    assert.equal(seL4_GetMR(u, 0), 1);
    const vs = yield* a.alloc(u, ObjectType.VSpace);
    check("Assign", yield* seL4_ARM_ASIDPool_Assign(u, pool, vs));
    // The pool is the second (index 1): its first ASID is 512.
    const vsObj = k.rootCNode.slot(vs).cap.obj as VSpace;
    assert.ok(vsObj instanceof VSpace);
    assert.equal(vsObj.asid, 512);
    // Assigning it again fails; mapping into it works.
    assert.equal(yield* seL4_ARM_ASIDPool_Assign(u, pool, vs), SeL4Error.InvalidCapability);
    const f = yield* a.alloc(u, ObjectType.SmallPage);
    check(
      "map in the new VSpace",
      yield* mapPage(u, a, f, 0x1000_0000, seL4_ReadWrite, seL4_ARM_Default_VMAttributes, vs),
    );
  });
});

conformance("VSPACE0003", () => {
  const k = bootKernel();
  const m = newMachine(k);
  runRoot(k, m, function* (u, a) {
    const pools: number[] = [];
    // The root task's pool is pool 0: 127 more fit in the 7-bit ASID table.
    for (let i = 0; i < 127; i++) {
      const { err, slot } = yield* makePool(u, a);
      check(`MakePool ${i}`, err);
      pools.push(slot);
    }
    // Every pool hands out ASIDs from its own range.
    for (const i of [0, 63, 126]) {
      const vs = yield* a.alloc(u, ObjectType.VSpace);
      check("Assign", yield* seL4_ARM_ASIDPool_Assign(u, pools[i]!, vs));
      assert.equal((k.rootCNode.slot(vs).cap.obj as VSpace).asid, (i + 1) * 512);
    }
  });
});

conformance("VSPACE0004", () => {
  const k = bootKernel();
  const m = newMachine(k);
  runRoot(k, m, function* (u, a) {
    const pools: number[] = [];
    for (let i = 0; i < 127; i++) {
      const { err, slot } = yield* makePool(u, a);
      check(`MakePool ${i}`, err);
      pools.push(slot);
    }
    const ut = yield* poolUntyped(u, a);
    const slot = a.slot();
    assert.equal(
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, ut, seL4_CapInitThreadCNode, slot, 64),
      SeL4Error.DeleteFirst,
    );
    // Nothing happened: the slot is empty and the untyped still has no children.
    assert.equal(k.rootCNode.slot(slot).cap.type, CapType.Null);
    // Deleting a pool frees its place in the ASID table: the next MakePool takes it.
    check("delete pool", yield* seL4_CNode_Delete(u, seL4_CapInitThreadCNode, pools[40]!, 64));
    check(
      "MakePool after delete",
      yield* seL4_ARM_ASIDControl_MakePool(u, seL4_CapASIDControl, ut, seL4_CapInitThreadCNode, slot, 64),
    );
    const vs = yield* a.alloc(u, ObjectType.VSpace);
    check("Assign", yield* seL4_ARM_ASIDPool_Assign(u, slot, vs));
    assert.equal((k.rootCNode.slot(vs).cap.obj as VSpace).asid, 41 * 512);
  });
});

conformance("VSPACE0005", () => {
  const k = bootKernel();
  const m = newMachine(k);
  runRoot(k, m, function* (u, a) {
    const { err, slot: pool } = yield* makePool(u, a);
    check("MakePool", err);
    const asids = new Set<number>();
    for (let i = 0; i < 512; i++) {
      const vs = yield* a.alloc(u, ObjectType.VSpace);
      check(`Assign ${i}`, yield* seL4_ARM_ASIDPool_Assign(u, pool, vs));
      asids.add((k.rootCNode.slot(vs).cap.obj as VSpace).asid);
    }
    assert.equal(asids.size, 512);
    assert.equal(Math.min(...asids), 512);
    assert.equal(Math.max(...asids), 1023);
    const vs = yield* a.alloc(u, ObjectType.VSpace);
    assert.equal(yield* seL4_ARM_ASIDPool_Assign(u, pool, vs), SeL4Error.DeleteFirst);
    // The refused VSpace has no ASID: nothing can be mapped into it.
    const f = yield* a.alloc(u, ObjectType.SmallPage);
    assert.equal(
      yield* seL4_ARM_Page_Map(u, f, vs, 0x1000_0000, seL4_ReadWrite, seL4_ARM_Default_VMAttributes),
      SeL4Error.InvalidCapability,
    );
    assert.equal(seL4_GetMR(u, 0), 1);
  });
});

conformance("VSPACE0006", () => {
  const k = bootKernel();
  const m = newMachine(k);
  const X = 0x1000_0000;
  // incr_mem: write the tag at X in its own VSpace, return what it reads back.
  const incr = m.program(function* (u: UserThread, tag: number) {
    assert.ok(yield* u.write32(X, tag));
    return (yield* u.read32(X)) ?? -1;
  });
  runRoot(k, m, function* (u, a) {
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    // Each process is built from a scratch untyped, revoked afterwards (cleanup_helper).
    const SCRATCH_BITS = 16;
    const scratchUt = yield* a.alloc(u, ObjectType.Untyped, SCRATCH_BITS);
    const first = a.slot();
    for (let i = 1; i < 32; i++) a.slot();
    for (let i = 0; i < 127; i++) {
      const { err, slot } = yield* makePool(u, a);
      check(`MakePool ${i}`, err);
      const scratch = new Allocator({
        ...k.bootInfo,
        empty: { start: first, end: first + 32 },
        untypeds: { start: scratchUt, end: scratchUt + 1 },
        untypedList: [{ paddr: 0, sizeBits: SCRATCH_BITS, isDevice: false }],
      });
      const frame = yield* scratch.alloc(u, ObjectType.SmallPage);
      const p = yield* createProcess(u, scratch, {
        entry: incr,
        args: [i],
        faultEp: ep,
        pool: slot,
        maps: [{ frame, vaddr: X }],
      });
      yield* waitExit(u, ep, reply, 0);
      assert.equal(seL4_GetMR(u, 4), i, `process ${i} read its tag back`);
      const vs = k.rootCNode.slot(p.vspace).cap.obj as VSpace;
      assert.equal(vs.asid, (i + 1) * 512);
      check("cleanup", yield* seL4_CNode_Revoke(u, seL4_CapInitThreadCNode, scratchUt, 64));
      // Deleting the VSpace gave its ASID back.
      assert.equal(vs.asid, 0);
      assert.equal(k.asidTable[i + 1]!.entries[0], null);
    }
  });
});

// ---- frames ----

const DEVICE_PADDR = 0x9000_0000;

/** A device frame retyped from the device untyped of bootKernel({deviceRegions}). */
function* deviceFrame(u: UserThread, a: Allocator, k: Kernel): Sel4Gen<number> {
  const i = k.bootInfo.untypedList.findIndex((b) => b.isDevice && b.paddr === DEVICE_PADDR);
  assert.ok(i >= 0, "device untyped present");
  const slot = a.slot();
  check(
    "retype device frame",
    yield* seL4_Untyped_Retype(
      u,
      k.bootInfo.untypeds.start + i,
      ObjectType.SmallPage,
      0,
      seL4_CapInitThreadCNode,
      0,
      0,
      slot,
      1,
    ),
  );
  const cap = k.rootCNode.slot(slot).cap;
  assert.equal(cap.type, CapType.Frame);
  assert.equal(cap.isDevice, true);
  return slot;
}

conformance("FRAMEDIPC0001", () => {
  const k = bootKernel({ deviceRegions: [[DEVICE_PADDR, 12]] });
  const m = newMachine(k);
  runRoot(k, m, function* (u, a) {
    const dev = yield* deviceFrame(u, a, k);
    const copy = a.slot();
    check(
      "copy",
      yield* seL4_CNode_Copy(
        u,
        seL4_CapInitThreadCNode,
        copy,
        64,
        seL4_CapInitThreadCNode,
        dev,
        64,
        seL4_AllRights,
      ),
    );
    const tcb = yield* a.alloc(u, ObjectType.TCB);
    const vaddr = a.vaddr(1);
    assert.equal(
      yield* seL4_TCB_Configure(u, tcb, seL4_CapInitThreadCNode, 0, seL4_CapInitThreadVSpace, 0, vaddr, copy),
      SeL4Error.IllegalOperation,
    );
    // The refused Configure changed nothing.
    const t = tcbAt(k, tcb);
    assert.equal(t.ctes[TCB_CTABLE]!.cap.type, CapType.Null);
    assert.equal(t.ipcBuffer, null);
    // The same Configure with an ordinary frame succeeds.
    const f = yield* a.alloc(u, ObjectType.SmallPage);
    check(
      "Configure",
      yield* seL4_TCB_Configure(u, tcb, seL4_CapInitThreadCNode, 0, seL4_CapInitThreadVSpace, 0, vaddr, f),
    );
    assert.notEqual(t.ipcBuffer, null);
  });
});

conformance("FRAMEDIPC0002", () => {
  const k = bootKernel({ deviceRegions: [[DEVICE_PADDR, 12]] });
  const m = newMachine(k);
  // wait_func: two sends; the second carries 6 words, so it goes through the IPC buffer.
  const waitFunc = m.program(function* (u: UserThread, ep: number) {
    yield* seL4_Send(u, ep, seL4_MessageInfo_new(1, 0, 0, 0));
    for (let i = 0; i < 6; i++) seL4_SetMR(u, i, 0x100 + i);
    yield* seL4_Send(u, ep, seL4_MessageInfo_new(2, 0, 0, 6));
  });
  runRoot(k, m, function* (u, a) {
    const dev = yield* deviceFrame(u, a, k);
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const h = yield* createThread(u, a, { entry: waitFunc, args: [ep] });
    const r1 = yield* seL4_Wait(u, ep);
    assert.equal(seL4_MessageInfo_get_label(r1.info), 1);
    const t = tcbAt(k, h.tcb);
    const before = t.ipcBuffer;
    assert.equal(yield* seL4_TCB_SetIPCBuffer(u, h.tcb, h.ipcBufferVaddr, dev), SeL4Error.IllegalOperation);
    assert.equal(t.ipcBuffer, before, "the IPC buffer is unchanged");
    // The thread still works, its long message included.
    const r2 = yield* seL4_Wait(u, ep);
    assert.equal(seL4_MessageInfo_get_label(r2.info), 2);
    assert.equal(seL4_MessageInfo_get_length(r2.info), 6);
    assert.deepEqual(mrs(u, 6), [0x100, 0x101, 0x102, 0x103, 0x104, 0x105]);
  });
});

conformance("FRAMEDIPC0003", () => {
  const k = bootKernel();
  const m = newMachine(k);
  const touch = m.program(function* (u: UserThread, data: number) {
    yield* u.write32(data, 42);
    // Reaching here means the write went through: report it with a different fault.
    yield* u.exception(ESR_UNDEFINED, 0);
  });
  runRoot(k, m, function* (u, a) {
    const frame = yield* a.alloc(u, ObjectType.SmallPage);
    const copy = a.slot();
    check(
      "copy",
      yield* seL4_CNode_Copy(
        u,
        seL4_CapInitThreadCNode,
        copy,
        64,
        seL4_CapInitThreadCNode,
        frame,
        64,
        seL4_AllRights,
      ),
    );
    const dest = a.vaddr(1);
    check("map copy", yield* mapPage(u, a, copy, dest));
    assert.ok(yield* u.write32(dest, 0x1234), "accessible while mapped");
    check("delete copy", yield* seL4_CNode_Delete(u, seL4_CapInitThreadCNode, copy, 64));
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    const f = yield* createThread(u, a, { entry: touch, args: [dest], faultEp: ep });
    const r = yield* seL4_Recv(u, ep, reply);
    assert.equal(seL4_MessageInfo_get_label(r.info), FaultType.VMFault);
    const [ip, addr, prefetch, fsr] = mrs(u, 4) as [number, number, number, number];
    assert.equal(ip, touch + INSTRUCTION_SIZE);
    assert.equal(addr, dest);
    assert.equal(prefetch, 0);
    assert.equal((fsr & ~3) >>> 0, ESR_DATA_WRITE);
    assert.equal(tcbAt(k, f.tcb).state, ThreadState.BlockedOnReply);
    // The frame itself is intact: mapped again through the original cap it holds what was written.
    const again = a.vaddr(1);
    check("map original", yield* mapPage(u, a, frame, again));
    assert.equal(yield* u.read32(again), 0x1234);
  });
});

conformance("FRAMEEXPORTS0001", () => {
  const k = bootKernel();
  const m = newMachine(k);
  const U = 0x55;
  const V = 0x56;
  /** touch_data's sample: 16 offsets spread over the frame, and its last byte. */
  const offsets = (bits: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < 16; i++) out.push((2 ** bits / 16) * i);
    out.push(2 ** bits - 1);
    return out;
  };
  // The second thread: sees 'U' at every sample of its mapping, writes 'V', then reads one byte
  // past the frame's end (a VM fault reports where).
  const other = m.program(function* (u: UserThread, vaddr: number, bits: number) {
    for (const off of offsets(bits)) {
      const b = yield* u.read(vaddr + off, 1);
      assert.equal(b?.[0], U, `byte ${off} through the second mapping`);
      assert.ok(yield* u.write(vaddr + off, Uint8Array.of(V)));
    }
    yield* u.read(vaddr + 2 ** bits, 1);
    throw new Error("read past the frame succeeded");
  });
  runRoot(k, m, function* (u, a) {
    const ep = yield* a.alloc(u, ObjectType.Endpoint);
    const reply = yield* a.alloc(u, ObjectType.Reply);
    for (const [type, bits, mine, theirs] of [
      [ObjectType.SmallPage, 12, 0x6000_0000, 0x3000_0000],
      [ObjectType.LargePage, 21, 0x6020_0000, 0x3020_0000],
    ] as const) {
      const frame = yield* a.alloc(u, type);
      check("map", yield* mapPage(u, a, frame, mine));
      for (const off of offsets(bits)) {
        const b = yield* u.read(mine + off, 1);
        assert.equal(b?.[0], 0, `fresh frame byte ${off}`);
        assert.ok(yield* u.write(mine + off, Uint8Array.of(U)));
      }
      // Mapping it again at the same address (a remap) keeps its contents.
      check(
        "remap",
        yield* seL4_ARM_Page_Map(
          u,
          frame,
          seL4_CapInitThreadVSpace,
          mine,
          seL4_AllRights,
          seL4_ARM_Default_VMAttributes,
        ),
      );
      assert.equal((yield* u.read(mine + 2 ** bits - 1, 1))?.[0], U);
      // A second thread in its own VSpace maps a copy of the cap elsewhere.
      const copy = a.slot();
      check(
        "copy",
        yield* seL4_CNode_Copy(
          u,
          seL4_CapInitThreadCNode,
          copy,
          64,
          seL4_CapInitThreadCNode,
          frame,
          64,
          seL4_AllRights,
        ),
      );
      yield* createProcess(u, a, {
        entry: other,
        args: [theirs, bits],
        faultEp: ep,
        maps: [{ frame: copy, vaddr: theirs }],
      });
      const r = yield* seL4_Recv(u, ep, reply);
      assert.equal(seL4_MessageInfo_get_label(r.info), FaultType.VMFault);
      assert.equal(seL4_GetMR(u, 1), theirs + 2 ** bits, "the frame ends exactly at its size");
      for (const off of offsets(bits)) {
        assert.equal((yield* u.read(mine + off, 1))?.[0], V, `byte ${off} written by the other thread`);
      }
    }
  });
});
