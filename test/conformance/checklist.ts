/**
 * The rows of the seL4 conformance checklist (../shared/conformance/sel4test-checklist.md): the
 * names and intent of the real sel4test tests, plus the MCS rows the checklist requires. Each
 * applicable row has a test of ours registered under its name (see rows.ts); rows that do not
 * apply say why.
 */
export interface ChecklistRow {
  id: string;
  intent: string;
  /** Set for rows that do not apply to capvisor, with the reason shown in the table. */
  na?: string;
}

export const CHECKLIST: ChecklistRow[] = [
  {
    id: "BIND0001",
    intent:
      "Test that a bound tcb waiting on a sync endpoint receives normal sync ipc and notification notifications.",
  },
  {
    id: "BIND0002",
    intent: "Test that a bound tcb waiting on its bound notification recieves notifications",
  },
  {
    id: "BIND0003",
    intent: "Test IPC ordering 1) bound tcb waits on bound notification 2, true) another tcb sends a message",
  },
  {
    id: "BIND0004",
    intent: "Test IPC ordering 2) bound tcb waits on bound notification 1, true) another tcb sends a message",
  },
  { id: "CANCEL_BADGED_SENDS_0001", intent: "Basic endpoint cancelBadgedSends testing." },
  { id: "CANCEL_BADGED_SENDS_0002", intent: "cancelBadgedSends deletes caps" },
  { id: "CNODEOP0001", intent: "Basic seL4_CNode_Copy() testing" },
  { id: "CNODEOP0002", intent: "Basic seL4_CNode_Delete() testing" },
  { id: "CNODEOP0003", intent: "Basic seL4_CNode_Mint() testing" },
  { id: "CNODEOP0004", intent: "Basic seL4_CNode_Move() testing" },
  { id: "CNODEOP0005", intent: "Basic seL4_CNode_Mutate() testing" },
  { id: "CNODEOP0006", intent: "Basic seL4_CNode_CancelBadgedSends() testing" },
  { id: "CNODEOP0007", intent: "Basic seL4_CNode_Revoke() testing" },
  { id: "CNODEOP0008", intent: "Basic seL4_CNode_Rotate() testing" },
  {
    id: "CNODEOP0009",
    intent: "Basic seL4_CNode_SaveCaller() testing",
    na: "SaveCaller does not exist in the MCS API that capvisor implements (Microkit requires MCS); its MCS replacement, Reply objects, is tested by REPLY0001 and REPLY0002",
  },
  { id: "CSPACE0001", intent: "Test full cspace resolution" },
  { id: "DOMAINS0001", intent: "Change domain successfully()" },
  { id: "DOMAINS0002", intent: "Try non-existant domain()" },
  { id: "DOMAINS0003", intent: "Invoke non-domain cap()" },
  { id: "DOMAINS0004", intent: "Run threads in domains()" },
  {
    id: "FPU0000",
    intent: "Ensure that simple FPU operations work",
    na: "x86 FPU state: PD code is WebAssembly, whose floating point V8 saves and restores per worker; there is no FPU register file in the kernel's TCB to test",
  },
  {
    id: "FPU0001",
    intent: "Ensure multiple threads can use FPU simultaneously",
    na: "x86 FPU state: PD code is WebAssembly, whose floating point V8 saves and restores per worker; there is no FPU register file in the kernel's TCB to test",
  },
  {
    id: "FPU0003",
    intent: "Test seL4_TCB_SetFlags",
    na: "x86 FPU state: PD code is WebAssembly, whose floating point V8 saves and restores per worker; there is no FPU register file in the kernel's TCB to test",
  },
  {
    id: "FPU0004",
    intent: "Test disabling and re-enabling FPU",
    na: "x86 FPU state: PD code is WebAssembly, whose floating point V8 saves and restores per worker; there is no FPU register file in the kernel's TCB to test",
  },
  { id: "FRAMEDIPC0001", intent: "Test that we cannot create a thread with an IPC buffer that is a frame" },
  { id: "FRAMEDIPC0002", intent: "Test that we cannot switch a threads IPC buffer to a device frame" },
  { id: "FRAMEDIPC0003", intent: "Test that deleting a frame cap unmaps the frame" },
  { id: "FRAMEEXPORTS0001", intent: "Test that we can access all exported frames" },
  {
    id: "IOPORTS1000",
    intent: "Test fault if directly using I/O ports",
    na: "x86 I/O ports do not exist on the AArch64 ABI capvisor implements; guest port I/O belongs to the VMM (issue 5)",
  },
  { id: "IPC0001", intent: "Test SMP seL4_Send + seL4_Recv" },
  { id: "IPC0002", intent: "Test SMP seL4_Call + seL4_ReplyRecv" },
  { id: "IPC0003", intent: "Test SMP seL4_Send + seL4_Reply + seL4_Recv" },
  { id: "IPC0004", intent: "Test seL4_NBSend + seL4_Recv" },
  { id: "IPC0010", intent: "Test suspending an IPC mid-Call()" },
  { id: "IPC1001", intent: "Test SMP inter-AS seL4_Send + seL4_Recv" },
  { id: "IPC1002", intent: "Test SMP inter-AS seL4_Call + seL4_ReplyRecv" },
  { id: "IPC1003", intent: "Test SMP inter-AS seL4_Send + seL4_Reply + seL4_Recv" },
  { id: "IPC1004", intent: "Test inter-AS seL4_NBSend + seL4_Recv" },
  { id: "IPCRIGHTS0001", intent: "seL4_Send needs write" },
  { id: "IPCRIGHTS0002", intent: "seL4_Recv needs read" },
  { id: "IPCRIGHTS0003", intent: "seL4_Send with caps needs grant" },
  { id: "IPCRIGHTS0004", intent: "seL4_Call needs grant or grant-reply" },
  { id: "IPCRIGHTS0005", intent: "seL4_Reply grant depends of the grant of previous seL4_Recv" },
  { id: "NBWAIT0001", intent: "Test seL4_NBRecv" },
  { id: "PAGEFAULT0001", intent: "Test read page fault" },
  { id: "PAGEFAULT0002", intent: "Test write page fault" },
  { id: "PAGEFAULT0003", intent: "Test execute page fault" },
  { id: "PAGEFAULT0004", intent: "Test unknown system call" },
  { id: "PAGEFAULT0005", intent: "Test undefined instruction" },
  { id: "PAGEFAULT1001", intent: "Test read page fault (inter-AS)" },
  { id: "PAGEFAULT1002", intent: "Test write page fault (inter-AS)" },
  { id: "PAGEFAULT1003", intent: "Test execute page fault (inter-AS)" },
  { id: "PAGEFAULT1004", intent: "Test unknown system call (inter-AS)" },
  { id: "PREEMPT_REVOKE", intent: "Test preemption path in revoke" },
  { id: "REGRESSIONS0001", intent: "Ensure WriteRegisters functions correctly" },
  { id: "RETYPE0000", intent: "Retype test" },
  { id: "RETYPE0001", intent: "Incremental retype test" },
  { id: "RETYPE0002", intent: "Incremental retype test #2" },
  { id: "SCHED0000", intent: "Test suspending and resuming a thread (flaky)" },
  { id: "SCHED0002", intent: "Test resuming ourselves" },
  { id: "SCHED0003", intent: "Test TCB suspend/resume" },
  { id: "SCHED0004", intent: "Test threads at all priorities" },
  { id: "SCHED0005", intent: "Test set priority" },
  { id: "SCHED0006", intent: "Test IPC priorities for Send" },
  { id: "SCHED0020", intent: "test set prio to a higher prio runs higher prio thread" },
  {
    id: "SERSERV_CLIENT_001",
    intent: "Connect from client threads",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLIENT_002",
    intent: "Printf from client threads",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLIENT_003",
    intent: "Write from client threads",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLIENT_004",
    intent: "Printf, then write, then reset connection, and Printf, then write again, from client threads",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLIENT_005",
    intent: "Connect, then disconnect from server on all threads, then kill server from parent thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLI_PROC_001",
    intent: "Connect to server from a client in another VSpace and CSpace",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLI_PROC_002",
    intent: "Connect to server and printf(, true), from a client in another VSpace and CSpace",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLI_PROC_003",
    intent: "Connect to server and write(, true), from a client in another VSpace and CSpace",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLI_PROC_004",
    intent:
      "Connect to server, printf(), write(, true), then disconnect, then reconnect and printf() and write() again, from clients in other VSpaces and CSpaces",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_CLI_PROC_005",
    intent:
      "Connect to server then disconnect on all clients (in different VSpace/CSpace containers), and finally kill the server from the parent",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_001",
    intent: "Serial server spawn test",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_002",
    intent: "Test connecting to the server from a parent thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_003",
    intent: "Printf() from a connected parent thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_004",
    intent: "Write() from a connected parent thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_005",
    intent:
      "Test printf() and write() from a parent thread when after a connection reset (disconnect/reconnect)",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_006",
    intent: "Kill the Server from the Parent thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_007",
    intent: "Test a series of unexpected input values to spawn_thread",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_008",
    intent: "Test a series of unexpected input values to connect()",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_009",
    intent: "Test a series of unexpected input values to printf()",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "SERSERV_PARENT_010",
    intent: "Test a series of unexpected input values to write()",
    na: "tests the user-level serial server library of sel4test, not the kernel API",
  },
  {
    id: "STACK_ALIGNMENT_001",
    intent: "Testing x86 Stack Alignment",
    na: "x86 stack alignment of the C runtime; Wasm stacks are managed by V8",
  },
  {
    id: "SYNC001",
    intent: "libsel4sync Test binary semaphores",
    na: "tests libsel4sync, a user-level library, not the kernel API",
  },
  {
    id: "SYNC002",
    intent: "libsel4sync Test semaphores",
    na: "tests libsel4sync, a user-level library, not the kernel API",
  },
  {
    id: "SYNC003",
    intent: "libsel4sync Test monitors",
    na: "tests libsel4sync, a user-level library, not the kernel API",
  },
  {
    id: "SYNC004",
    intent: "libsel4sync Test monitors - broadcast",
    na: "tests libsel4sync, a user-level library, not the kernel API",
  },
  { id: "THREADS0004", intent: "seL4_TCB_Configure with a NULL CSpace should fail" },
  { id: "THREADS0005", intent: "seL4_TCB_SetSpace with a NULL CSpace should fail" },
  {
    id: "TLS0001",
    intent: "Test root thread accessing __thread variables",
    na: "tests the C library's __thread variables; the kernel-visible part, TCB_SetTLSBase, is tested by REGRESSIONS0001 and TCB tests",
  },
  {
    id: "TLS0002",
    intent: "Test multiple threads using __thread variables",
    na: "tests the C library's __thread variables; the kernel-visible part, TCB_SetTLSBase, is tested by REGRESSIONS0001 and TCB tests",
  },
  {
    id: "TLS0006",
    intent: "sel4utils_thread with distinct TLS should not interfere",
    na: "tests the C library's __thread variables; the kernel-visible part, TCB_SetTLSBase, is tested by REGRESSIONS0001 and TCB tests",
  },
  { id: "TRIVIAL0000", intent: "Ensure the test framework functions" },
  { id: "TRIVIAL0001", intent: "Ensure the allocator works" },
  { id: "TRIVIAL0002", intent: "Ensure the allocator works more than once" },
  { id: "VSPACE0000", intent: "Test threads in different cspace/vspace" },
  { id: "VSPACE0002", intent: "Test create ASID pool" },
  { id: "VSPACE0003", intent: "Test create multiple ASID pools" },
  { id: "VSPACE0004", intent: "Test running out of ASID pools" },
  { id: "VSPACE0005", intent: "Test overassigning ASID pool" },
  { id: "VSPACE0006", intent: "Test touching all available ASID pools" },
  // MCS rows (disabled in the x86 sel4test run, required here because Microkit relies on MCS).
  {
    id: "SCHED_CONTEXT_0001",
    intent: "Bind and unbind a scheduling context to and from a TCB; only a TCB with a configured SC runs",
  },
  { id: "SCHED_CONTEXT_0002", intent: "Bind and unbind a scheduling context to and from a notification" },
  {
    id: "SCHED_CONTEXT_0003",
    intent: "Budget enforcement: a thread with budget B per period P runs no more than B in any P",
  },
  {
    id: "SCHED_CONTEXT_0004",
    intent: "Sporadic refills: consumed budget is replenished one period after it was used",
  },
  {
    id: "SCHED_CONTEXT_0005",
    intent: "SchedContext_Consumed returns the time consumed since the last report and resets it",
  },
  {
    id: "SCHED_CONTEXT_0006",
    intent: "SchedContext_YieldTo runs the SC's thread at once and reports consumed time",
  },
  {
    id: "SCHED_CONTEXT_0007",
    intent: "SchedControl_ConfigureFlags range checks: budget above period, budget below the minimum",
  },
  {
    id: "PASSIVE_SERVER_0001",
    intent: "A passive server (no SC) runs on its caller's SC and returns it on reply",
  },
  {
    id: "PASSIVE_SERVER_0002",
    intent: "A passive server bound to a notification with an SC runs on that SC when signalled",
  },
  {
    id: "TIMEOUTFAULT0001",
    intent:
      "A thread exhausting its budget with a timeout handler raises a timeout fault with the SC's badge",
  },
  {
    id: "TIMEOUTFAULT0002",
    intent: "A passive server whose donated budget expires mid-call raises a timeout fault to its handler",
  },
  {
    id: "REPLY0001",
    intent:
      "Call/ReplyRecv with Reply objects: the reply goes to the caller; a used Reply cannot reply twice",
  },
  {
    id: "REPLY0002",
    intent:
      "Deleting a Reply cap whose caller waits cancels the call; the caller is not left blocked forever",
  },
];
