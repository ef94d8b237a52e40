/**
 * Constants and enumerations of the seL4 API that capvisor re-implements (64-bit, MCS).
 * Names and numeric values follow libsel4 so that a PD compiled against our headers sees the
 * same numbers a real seL4 user would. Where a value is architecture specific we follow
 * AArch64, the architecture of the target boards (DESIGN.md decision 6).
 */

/** seL4_Error (manual §10.1 "Errors"). Numbers are ABI. */
export enum SeL4Error {
  NoError = 0,
  InvalidArgument = 1,
  InvalidCapability = 2,
  IllegalOperation = 3,
  RangeError = 4,
  AlignmentError = 5,
  FailedLookup = 6,
  TruncatedMessage = 7,
  DeleteFirst = 8,
  RevokeFirst = 9,
  NotEnoughMemory = 10,
}

/** seL4_LookupFailureType (manual §3.4 "Capability lookup failures"). */
export enum LookupFailure {
  NoFailure = 0,
  InvalidRoot = 1,
  MissingCapability = 2,
  DepthMismatch = 3,
  GuardMismatch = 4,
}

/**
 * System call numbers of the MCS API (libsel4 syscall.xml, api-mcs), negative as in libsel4.
 * There is no Reply syscall under MCS: Recv and ReplyRecv name a Reply object. The debug
 * syscalls we keep are the two Microkit's debug output uses.
 */
export enum Syscall {
  Call = -1,
  ReplyRecv = -2,
  NBSendRecv = -3,
  NBSendWait = -4,
  Send = -5,
  NBSend = -6,
  Recv = -7,
  NBRecv = -8,
  Wait = -9,
  NBWait = -10,
  Yield = -11,
  DebugPutChar = -12,
  DebugDumpScheduler = -13,
  DebugHalt = -14,
  DebugCapIdentify = -15,
  DebugSnapshot = -16,
  DebugNameThread = -17,
}
export const SYSCALL_MIN = Syscall.DebugNameThread;
export const SYSCALL_MAX = Syscall.Call;

/**
 * Object types for Untyped_Retype, numbered as on AArch64 (generic types first, then the
 * architecture's). Huge/large pages are the AArch64 names for 1 GiB and 2 MiB frames.
 */
export enum ObjectType {
  Untyped = 0,
  TCB = 1,
  Endpoint = 2,
  Notification = 3,
  CapTable = 4,
  SchedContext = 5,
  Reply = 6,
  HugePage = 7,
  VSpace = 8,
  SmallPage = 9,
  LargePage = 10,
  PageTable = 11,
  VCPU = 12,
}
export const OBJECT_TYPE_COUNT = 13;

/** Kinds of capability (seL4 cap_tag_t); distinct from object types: several caps have no object. */
export enum CapType {
  Null = 0,
  Untyped = 1,
  Endpoint = 2,
  Notification = 3,
  Reply = 4,
  CNode = 5,
  Thread = 6,
  IRQControl = 7,
  IRQHandler = 8,
  Zombie = 9,
  Domain = 10,
  SchedContext = 11,
  SchedControl = 12,
  Frame = 13,
  PageTable = 14,
  VSpace = 15,
  ASIDControl = 16,
  ASIDPool = 17,
  VCPU = 18,
}

/** seL4_CapRights bits: seL4_CapRights_new(grantReply, grant, read, write). */
export const RIGHT_WRITE = 1;
export const RIGHT_READ = 2;
export const RIGHT_GRANT = 4;
export const RIGHT_GRANT_REPLY = 8;
export const ALL_RIGHTS = 15;

/**
 * Invocation labels, in libsel4's generated order for the MCS configuration without SMP
 * affinity or breakpoints, then the AArch64 labels we implement.
 */
export enum Invocation {
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
  // AArch64
  ARMVSpaceCleanData,
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
}

/** Thread states (seL4 _thread_state). */
export enum ThreadState {
  Inactive = 0,
  Running = 1,
  Restart = 2,
  BlockedOnReceive = 3,
  BlockedOnSend = 4,
  BlockedOnReply = 5,
  BlockedOnNotification = 6,
  Idle = 7,
}

/** seL4_FaultType, AArch64 numbering (MCS adds Timeout, ARM hyp adds the VCPU faults). */
export enum FaultType {
  Null = 0,
  CapFault = 1,
  UnknownSyscall = 2,
  UserException = 3,
  DebugException = 4,
  Timeout = 5,
  VMFault = 6,
  VGICMaintenance = 7,
  VCPUFault = 8,
  VPPIEvent = 9,
}

/** Endpoint and notification queue states. */
export enum EndpointState {
  Idle = 0,
  Send = 1,
  Recv = 2,
}
export enum NotificationState {
  Idle = 0,
  Waiting = 1,
  Active = 2,
}

// ---- sizes (bits), AArch64 MCS ----
export const WORD_BITS = 64;
export const SLOT_BITS = 5;
export const TCB_BITS = 11;
export const ENDPOINT_BITS = 4;
export const NOTIFICATION_BITS = 6;
export const REPLY_BITS = 5;
export const PAGE_BITS = 12;
export const LARGE_PAGE_BITS = 21;
export const HUGE_PAGE_BITS = 30;
export const PAGE_TABLE_BITS = 12;
export const VSPACE_BITS = 12;
export const ASID_POOL_BITS = 12;
export const VCPU_BITS = 12;
export const MIN_UNTYPED_BITS = 4;
export const MAX_UNTYPED_BITS = 47;
export const MIN_SCHED_CONTEXT_BITS = 7;
/** A scheduling context's size buys its refills: header then 16-byte refills (seL4 MCS). */
export const SCHED_CONTEXT_HEADER_BYTES = 88;
export const REFILL_BYTES = 16;
export const MIN_REFILLS = 2;
/** CONFIG_RETYPE_FAN_OUT_LIMIT default. */
export const RETYPE_FAN_OUT_LIMIT = 256;

// ---- IPC ----
export const MSG_MAX_LENGTH = 120;
export const MSG_MAX_EXTRA_CAPS = 3;
/** MR0..MR3 travel in registers x2..x5 on AArch64; the rest only in the IPC buffer. */
export const MSG_REGISTERS = 4;
/** IPC buffer: tag, msg[120], userData, caps_or_badges[3], receiveCNode, receiveIndex, receiveDepth. */
export const IPC_BUFFER_WORDS = 128;
export const IPC_BUFFER_SIZE_BITS = 10;
export const IPCBUF_TAG = 0;
export const IPCBUF_MSG = 1;
export const IPCBUF_USER_DATA = 121;
export const IPCBUF_CAPS = 122;
export const IPCBUF_RECV_CNODE = 125;
export const IPCBUF_RECV_INDEX = 126;
export const IPCBUF_RECV_DEPTH = 127;

// ---- scheduling ----
export const NUM_PRIORITIES = 256;
export const MAX_PRIO = 255;
/** seL4's TCB cnode slots under MCS. */
export const TCB_CTABLE = 0;
export const TCB_VTABLE = 1;
export const TCB_IPC_BUFFER = 2;
export const TCB_FAULT_HANDLER = 3;
export const TCB_TIMEOUT_HANDLER = 4;
export const TCB_CNODE_ENTRIES = 5;

// ---- ASIDs (AArch64 without hyp: 16-bit ASIDs, 7 high bits select the pool) ----
export const ASID_HIGH_BITS = 7;
export const ASID_LOW_BITS = 9;
export const ASID_POOL_SIZE = 1 << ASID_LOW_BITS;
export const NUM_ASID_POOLS = 1 << ASID_HIGH_BITS;

/** Microkit's badge bits (libmicrokit): a protected call, a fault. */
export const MICROKIT_PPC_BADGE_BIT = 63;
export const MICROKIT_FAULT_BADGE_BIT = 62;

// ---- user context: AArch64 seL4_UserContext order (libsel4 sel4_arch/types.h) ----
export const REG_PC = 0;
export const REG_SP = 1;
export const REG_SPSR = 2;
/** x0..x8 are contiguous: REG_X0 + n for n <= 8. */
export const REG_X0 = 3;
export const REG_X16 = 12;
export const REG_X17 = 13;
export const REG_X18 = 14;
export const REG_X29 = 15;
export const REG_X30 = 16;
/** x9..x15 */
export const REG_X9 = 17;
/** x19..x28 */
export const REG_X19 = 24;
export const REG_TPIDR_EL0 = 34;
export const REG_TPIDRRO_EL0 = 35;
export const NUM_REGISTERS = 36;
export const NUM_FRAME_REGISTERS = 17;
/** Size of one "instruction" in our abstract ISA: a syscall advances pc by this much. */
export const INSTRUCTION_SIZE = 4;

/**
 * Syscall register ABI (AArch64 seL4): x0 capability / badge, x1 message info, x2..x5 MR0..MR3,
 * x6 reply capability (MCS), x7 syscall number, x8 NBSendRecv destination.
 */
export const REG_CAP = REG_X0;
export const REG_BADGE = REG_X0;
export const REG_MSGINFO = REG_X0 + 1;
export const REG_MR0 = REG_X0 + 2;
export const REG_REPLY = REG_X0 + 6;
export const REG_SYSCALL = REG_X0 + 7;
export const REG_NBSR_DEST = REG_X0 + 8;

/** Kernel-internal outcome of an operation (seL4 exception_t). */
export enum Exception {
  None = 0,
  Fault = 1,
  LookupFault = 2,
  SyscallError = 3,
  Preempted = 4,
}

/** seL4 ZombieType_ZombieTCB: a Zombie cap's type for a dying TCB (CNode zombies store their radix). */
export const ZOMBIE_TYPE_TCB = 64;
