/*
 * The cross-VM channel's publish-and-wake protocol (docs/vm-channel.md, "Publishing and
 * waking"), for SPIN. Checked by src/verify/spin.ts; run by hand with
 *   spin -a vm-channel.pml && gcc -O2 -DSAFETY -DNOCLAIM -DBFS -o pan pan.c && ./pan
 *   spin -a vm-channel.pml && gcc -O2 -o pan pan.c && ./pan -a -f
 * (add -DMUTANT_..., -DCOPY_COHERENT, -DSIGNAL_BEFORE_RECHECK or -DN=... to spin -a).
 *
 * Two ends, each the single thread of a Microkit PD (end 0 the guest's VMM, end 1 the WasmEdge
 * runtime PD). End e produces into ring e (0 = requests, 1 = responses) and consumes ring 1-e,
 * so each direction has one producer and one consumer, the two ends of the one channel.
 *
 * What is abstracted: a ring holds CAP units; the record carrying message k takes LEN(k) units
 * (never more than CAP/2, as the doc requires), and every unit of it holds k, so a consumer that
 * reads a unit the producer has not written yet, or one overwritten early, sees a wrong number.
 * head and tail are free-running counters modulo WRAP = 2*CAP: the doc's u32 counters wrap at
 * 2^32, a multiple of cap, and "bytes in the ring" is (head - tail) mod 2^32; any modulus that is
 * a multiple of CAP and larger than CAP exercises the same arithmetic, wrap included.
 *
 * Memory: every load and store of head, tail, waiting and a data unit is its own statement (its
 * own step, interleaved with everything the other end does). By default memory is sequentially
 * consistent, as when both ends are native PDs in one JavaScript thread or use Atomics on the
 * region's SharedArrayBuffer. -DCOPY_COHERENT instead gives each end the view a Wasm PD has
 * (DESIGN.md decision 5: a copy published at kernel entry and read back at kernel exit), under
 * which the documented protocol loses a wake-up; -DSIGNAL_BEFORE_RECHECK is the repair (the
 * producer signals between setting waiting and reading tail again).
 *
 * The kernel: a Microkit notification is one seL4 Notification word and the channel one bit of
 * it. seL4_Signal ORs the bit in, or hands it to the thread blocked in seL4_Wait; seL4_Wait
 * returns and clears the word if a bit is set, otherwise blocks (seL4 reference manual, section
 * "Notifications"). Each is one system call, atomic with respect to the other thread (the
 * kernel runs a system call to completion), hence the d_step below. Several signals before one
 * wait wake it once: nothing counts them.
 *
 * Mutants (spin -DMUTANT_..., each breaks one rule of the doc and must give a counterexample):
 *   MUTANT_NO_RECHECK     producer sets waiting and sleeps without reading tail again
 *   MUTANT_NO_WAITING     consumer never looks at waiting, so never wakes a full producer
 *   MUTANT_ONE_PER_WAKE   consumer takes one record per wake (counts notifications)
 *   MUTANT_HEAD_FIRST     producer stores head before the record's units (no release order)
 */

#ifndef CAP
#define CAP 4
#endif
#ifndef MAXLEN
#define MAXLEN 2
#endif
#ifndef N
#define N 7
#endif
#define WRAP (2 * CAP)
/* Units of the record carrying message k: 1, 2, 1, 2, ... so free space is sometimes too small
 * for the next record but not zero (the "cap - (head - tail) < n" case with n > 1). */
#define LEN(k) ((((k) - 1) % MAXLEN) + 1)

byte head[2];        /* ring r: units ever published, mod WRAP (written by its producer) */
byte tail[2];        /* ring r: units ever consumed, mod WRAP (written by its consumer) */
bit waiting[2];      /* ring r: its producer found too little space */
byte data[2 * CAP];  /* ring r's unit i is data[r * CAP + i] */
bit ntfn[2];         /* end e's notification word: the one channel bit */
byte rx[2];          /* ring r: messages its consumer has taken (for the progress claim) */

#ifndef COPY_COHERENT
/* Sequentially consistent shared memory: each access below is one load or store. */
#define HEAD(r) head[r]
#define TAIL(r) tail[r]
#define WAITING(r) waiting[r]
#define UNIT(r, i) data[(r) * CAP + ((i) % CAP)]
#define SET_WAITING(r, v) waiting[r] = v
#define PUBLISH skip
#define REFRESH skip
#else
/* DESIGN.md decision 5, as src/platform/pd-worker.ts implements it for Wasm PDs: each end works
 * on its own copy of the region; at every kernel entry it publishes the bytes that differ from
 * what it read back at its last kernel exit, and at every exit it reads the whole region back.
 * For words only one end writes (head, tail, the units) that is the same as publishing them
 * always; waiting, written by both ends, is published only when this end's copy differs from
 * its snapshot (so a 1 -> 0 -> 1 change in between is not published, as in pd-worker). */
byte vhead[4];          /* end e's copy of head[r] is vhead[e * 2 + r]; likewise below */
byte vtail[4];
bit vwaiting[4];
bit swaiting[4];        /* waiting[r] as end e last read it back */
byte vdata[4 * CAP];
#define V(r) (me * 2 + (r))
#define HEAD(r) vhead[V(r)]
#define TAIL(r) vtail[V(r)]
#define WAITING(r) vwaiting[V(r)]
#define UNIT(r, i) vdata[me * 2 * CAP + (r) * CAP + ((i) % CAP)]
#define SET_WAITING(r, v) vwaiting[V(r)] = v
#define PUBLISH \
  head[out] = vhead[V(out)]; \
  tail[in] = vtail[V(in)]; \
  i = 0; \
  do \
  :: i < CAP -> data[out * CAP + i] = vdata[me * 2 * CAP + out * CAP + i]; i++ \
  :: else -> break \
  od; \
  i = 0; \
  do \
  :: i < 2 -> if :: vwaiting[V(i)] != swaiting[V(i)] -> waiting[i] = vwaiting[V(i)]; swaiting[V(i)] = vwaiting[V(i)] :: else -> skip fi; i++ \
  :: else -> break \
  od; \
  i = 0
#define REFRESH \
  i = 0; \
  do \
  :: i < 2 -> vhead[V(i)] = head[i]; vtail[V(i)] = tail[i]; vwaiting[V(i)] = waiting[i]; swaiting[V(i)] = waiting[i]; i++ \
  :: else -> break \
  od; \
  i = 0; \
  do \
  :: i < 2 * CAP -> vdata[me * 2 * CAP + i] = data[i]; i++ \
  :: else -> break \
  od; \
  i = 0
#endif
#if defined(COPY_COHERENT) && defined(PREEMPT_SYNC)
/* A Wasm PD is also preempted at loop back-edges (src/pd/wasm/instrument.ts), and each
 * preemption is a kernel entry and exit: publish, then read back. Offered at the top of the
 * consumer's and producer's loops, any number of times (safety checks only: a run that does
 * nothing but get preempted is not a fair one). */
#define PREEMPTION :: d_step { PUBLISH; REFRESH }
#else
#define PREEMPTION
#endif
#define USED(r) ((HEAD(r) + WRAP - TAIL(r)) % WRAP)

inline signal(e) {
  d_step { PUBLISH; ntfn[e] = 1; REFRESH }
}

/* Entering the kernel (publish) and returning from it (refresh) are two steps: the other end
 * runs in between. */
inline wait(e) {
  d_step { PUBLISH };
  d_step { ntfn[e] == 1 -> ntfn[e] = 0; REFRESH }
}

/* Consumer of ring `in` (docs: consumer steps 1 and 2). */
inline consume() {
  do
  /* One load of head (tail is this end's own): both guards are weighed in one step, on one
   * state, and exactly one holds (written out rather than else, for readable trails). */
  PREEMPTION
  :: HEAD(in) == TAIL(in) -> break
  :: HEAD(in) != TAIL(in) ->
     k = UNIT(in, TAIL(in));
     assert(k == rx[in] + 1);  /* in order, nothing lost or repeated */
     i = 1;
     do
     :: i < LEN(k) ->
        assert(UNIT(in, TAIL(in) + i) == k);  /* the whole record is this message's */
        i++
     :: else -> break
     od;
     TAIL(in) = (TAIL(in) + LEN(k)) % WRAP;
     rx[in]++;
     /* Locals back to 0 once dead, so equal shared states are not told apart by leftovers. */
     i = 0;
     k = 0;
#ifdef MUTANT_ONE_PER_WAKE
     break
#else
     skip
#endif
  od;
#ifndef MUTANT_NO_WAITING
  if
  :: WAITING(in) == 1 -> SET_WAITING(in, 0); signal(other)
  :: WAITING(in) == 0 -> skip
  fi
#endif
}

/* Producer of ring `out`: publish messages until all N are sent or the ring is too full
 * (docs: producer steps 1-3; "start again at 1" is the next call, after the end's wait). */
inline produce() {
  /* Complementary guards, not else: inlined as the first statement of an alternative below,
   * an else would be weighed against the other alternative's first statement and never run. */
  do
  PREEMPTION
  :: next > N -> break
  :: next <= N ->
     n = LEN(next);
     /* Each if below is one load of tail (head is this end's own). */
     if
     :: CAP - USED(out) < n ->
        SET_WAITING(out, 1);
#ifdef SIGNAL_BEFORE_RECHECK
        /* The fix for copying PDs: a kernel entry and exit between the store and the load, so
         * waiting is published and tail read back before it is looked at again. */
        signal(other);
#endif
#ifdef MUTANT_NO_RECHECK
        n = 0;
        break
#else
        if
        :: CAP - USED(out) < n -> n = 0; break
        :: CAP - USED(out) >= n -> skip
        fi
#endif
     :: CAP - USED(out) >= n -> skip
     fi;
#ifdef MUTANT_HEAD_FIRST
     HEAD(out) = (HEAD(out) + n) % WRAP;
     i = 0;
     do
     :: i < n -> UNIT(out, HEAD(out) + WRAP - n + i) = next; i++
     :: else -> break
     od;
#else
     i = 0;
     do
     :: i < n -> UNIT(out, HEAD(out) + i) = next; i++
     :: else -> break
     od;
     HEAD(out) = (HEAD(out) + n) % WRAP;
#endif
     i = 0;
     n = 0;
     signal(other);
     next++
  od
}

proctype End(byte me) {
  byte out = me;
  byte in = 1 - me;
  byte other = 1 - me;
  byte next = 1;  /* the next message to send */
  byte k, i, n;

  /* "on each wake (and once at start)". Either role may come first in an iteration (the
   * runtime PD drains requests first, the VMM may push guest bytes first): both orders are
   * explored. */
  do
  :: if
     :: consume(); produce()
     :: produce(); consume()
     fi;
     if
     :: next > N && rx[in] == N -> break
     :: else -> skip
     fi;
     /* Not an end state: a thread blocked here for ever is a deadlock. */
     wait(me)
  od
  /* Falling off the end is the legitimate end state: everything sent and received. */
}

init {
  atomic { run End(0); run End(1) }
}

/* Progress: every message sent is eventually received, in both directions (all N of each are
 * sent and taken). Checked with weak fairness (pan -a -f). */
ltl progress { <> (rx[0] == N && rx[1] == N) }
