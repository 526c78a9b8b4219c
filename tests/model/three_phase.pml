/*
 * Three-phase commit through participant agents: the rules of docs/three-phase-commit.md as a
 * Promela model, checked by spin for agreement, validity and progress with three participants
 * and a crash (with restart) of every process at any step.
 *
 * How to read it
 * - Every handler of the design is one `atomic { guard -> effect }` step: an agent handles one
 *   message at a time, atomically with the state queries (rule d). Between two steps anything
 *   else may happen, including a crash of any process.
 * - Durable state (survives a crash): an agent's participant state `ast[i]`, the coordinator's
 *   pre-commit and commit records `cpre`, `ccommit`. Everything else is in memory and lost in a
 *   crash (the coordinator's phase and tallies, an agent's `asked` flag and its termination round).
 * - Messages from the coordinator to agent i: the slot `msg[i]` (one message at a time is all
 *   the protocol ever has in flight to one agent). A message to a down agent is lost, and a
 *   crash drops the messages in flight to the crashed agent (its connections close); messages a
 *   coordinator sent before crashing may still arrive. Replies (votes, acks) are delivered with
 *   the handler that sends them into the coordinator's in-memory tallies; a coordinator that is
 *   down or has moved on drops them, which is what a lost reply does.
 * - Decisions travel by visibility: an undecided agent adopts a decision of any peer that is
 *   up, or of the coordinator while it is up and decided. This stands for DoCommit/Abort from
 *   the coordinator or a backup, and for rule a's questions; adopting only copies a decision
 *   that exists, so allowing it at any moment adds behaviours without hiding any.
 * - StateQuery is a step of the backup's round, atomic at the asked agent, so a PreCommit or
 *   another round's query can fall between two of them. Every round has an identity never
 *   used before (`nround`: the asker, its incarnation and a counter in the design); a query
 *   leaves it in the asked agent's `lastask` (memory).
 * - MoveToPre is a real message: the backup sends one per step into the slot
 *   `mtp[sender * NA + target]`, and the target handles it in a step of its own, so it can
 *   stay in flight after the backup crashed and arrive after other rounds ran. The target
 *   moves WAIT to PRE only when the message's round is its `lastask`; its answer reaches the
 *   sender's round while that round still runs. The backup commits once every participant it
 *   counted in WAIT acknowledged PRE or lost the message in a crash; any other answer makes
 *   it abandon the round undecided (its next timeout runs a new one).
 *
 * Time (the abstraction of timeouts; "every timeout is longer than any message delay")
 * - The coordinator's vote or ack timeout for agent i fires only when no reply from i has
 *   arrived and no message to i is in flight: the request was lost (i crashed) or i refused it,
 *   so the reply can never come. It never fires while a reply is still possible.
 * - An agent's termination timeout fires whenever no coordinator message to it is in flight,
 *   whether the coordinator is down, slow, or alive and stuck (the case the fence is for). This
 *   loses no behaviour of a real timer: a message still in flight when the timer fires could as
 *   well have been sent after it, and sending commutes with the agent's step.
 *
 * Bounds: each process crashes at most CRASHES_EACH times (1 by default), MAX_CRASHES in all
 * (4 by default: every process once); agents always restart (rule c waits for every participant
 * to be up; an agent that never returns blocks its restarted peers, as the design accepts); the
 * coordinator may restart or stay down for good (the agents must finish without it).
 *
 * One rule the model needs beyond the design's text (see `ask` and the two variants at the end
 * of this comment): a participant asked about a transaction it has no record of (INIT) records
 * ABORT and answers ABORT, so it never becomes the backup and a late CanCommit is answered no.
 *
 * Properties
 * - agreement: no process ever decides COMMIT while another (coordinator included) decides
 *   ABORT; ghost flags record every decision ever taken, so a decision lost in a crash still
 *   counts; checked by assert at every decision.
 * - validity: COMMIT only if every participant voted yes (assert at every COMMIT).
 * - progress: `ltl progress`: eventually for ever every agent is up and none is undecided
 *   (WAIT or PRE), and the coordinator is up and decided or gone for good. The model has no
 *   cycles (every step changes durable state, consumes a message, advances a round, or uses up
 *   a crash; waiting is a blocked guard, never a loop), so every run is finite and the formula
 *   says: every run ends with everybody decided; no fairness assumption is needed.
 *
 * Broken variants (compile with -D<NAME>; each must make spin report a violation):
 *   TEXTBOOK_TIMEOUTS        an undecided agent decides on its timeout: WAIT aborts, PRE commits
 *   COMMIT_ON_ACK_TIMEOUT    the coordinator commits when a PreCommit acknowledgement times out
 *   RESTARTED_DECIDES_ALONE  a restarted agent runs the round at once over whoever it can reach
 *   NO_PROMOTION             the round commits on a PRE without moving WAIT agents to PRE
 *   NO_BACKUP                every undecided agent runs the round at once (no single backup)
 *   COUNT_RESTARTED          rule b also asks, and counts, restarted participants
 *   MOVE_TO_PRE_ANY_ROUND    a MoveToPre moves WAIT to PRE whichever round sent it (a late one
 *                            from a crashed backup lands after another backup aborted)
 *   RULE_C_EVERYONE_RUNS     every restarted participant may run rule c at once (livelock:
 *                            the rounds void each other's MoveToPre for ever; the search does
 *                            not end, as the round identities grow without bound)
 * A weaker bound whose own progress formula must hold (the survivors finish alone):
 *   AGENTS_MAY_DIE           an agent's crash may be for good; every participant that never
 *                            crashed must still decide
 * An option that must keep every property (the design's rule c names the coordinator too):
 *   COORDINATOR_RUNS_RULE_C  a restarted coordinator with a pre-commit record may also apply
 *                            rule b over all participants, not only adopt their decision
 * Two more, for what the design must say about a participant with no record (INIT):
 *   RULE_C_IGNORES_INIT      rule c's readiness check neither waits for nor fences a
 *                            participant with no record (breaks agreement: it may vote yes and
 *                            run rule b beside the restarted participant's round)
 *   UNINFORMED_BACKUP        a participant with no record counts as the backup (breaks
 *                            progress: it never runs the round, so its peers wait for ever)
 */

#define NA 3                /* participants P0, P1, P2; the lower the number, the earlier backup */

#ifndef MAX_CRASHES
#define MAX_CRASHES 4       /* crashes in all */
#endif
#ifndef CRASHES_EACH
#define CRASHES_EACH 1      /* crashes of one process */
#endif

/* Participant states (durable at the agent). */
#define INIT   0            /* nothing recorded: the agent may not know the transaction */
#define WAIT   1            /* voted yes */
#define PRE    2            /* pre-committed */
#define COMMIT 3
#define ABORT  4
#define undecided(s) ((s) == WAIT || (s) == PRE)
#define decided(s)   ((s) >= COMMIT)

/* Coordinator-to-agent messages in flight. */
#define NONE      0
#define CANCOMMIT 1
#define PRECOMMIT 2

/* Coordinator phases (in memory). */
#define C_CANCOMMIT 0       /* sending CanCommit, agent by agent */
#define C_VOTES     1       /* waiting for votes */
#define C_PRECOMMIT 2       /* pre-commit record durable; sending PreCommit, agent by agent */
#define C_ACKS      3       /* waiting for every PRE acknowledgement */
#define C_PENDING   4       /* an ack timed out: decided nothing, learns the outcome from agents */
#define C_RECOVER   5       /* restarted with a pre-commit record and no commit record */
#define C_COMMIT    6
#define C_ABORT     7
#define C_OFF       8       /* down */

/* Coordinator process status. */
#define UP   0
#define DOWN 1              /* crashed, will restart */
#define DEAD 2              /* crashed, never returns */

/* Votes as the coordinator collected them. */
#define V_NONE 0
#define V_YES  1
#define V_NO   2

byte ast[NA];               /* durable participant state */
bool adown[NA];             /* agent is down */
byte acrashed[NA];          /* crashes of the agent so far */
bool adead[NA];             /* agent crashed for good (AGENTS_MAY_DIE only) */
bool restarted[NA];         /* recovered this participant from its log after a crash */
bool asked[NA];             /* a backup asked it: it ignores PreCommit from now on */
byte lastask[NA];           /* identity of the last round that asked it (memory; 0: none) */
byte nround;                /* round identities handed out so far: one per round, never reused,
                             * standing for (asker, asker's incarnation, counter) */
byte mtp[NA * NA];          /* MoveToPre in flight from agent s's round to agent j:
                             * mtp[s * NA + j] holds the round's identity (0: none) */
byte rcur[NA];              /* identity of agent s's current round (0: none): where replies go */
byte racked[NA];            /* bit j: j acknowledged PRE to agent s's current round */
bool rrefused[NA];          /* a MoveToPre of agent s's current round was answered otherwise */
byte msg[NA];               /* coordinator -> agent message in flight */

byte cst = UP;              /* coordinator status */
byte cphase = C_CANCOMMIT;
byte cidx;                  /* next agent to send to */
byte cvote[NA];             /* votes received (in memory) */
bool cack[NA];              /* PRE acks received (in memory) */
bool cpre;                  /* durable pre-commit record */
bool ccommit;               /* durable commit record */
byte ccrashed;              /* crashes of the coordinator so far */
byte crashes;               /* crashes so far, all processes */

/* Ghosts: every decision ever taken by anyone, every yes vote. */
bool ever_commit;
bool ever_abort;
byte yes_votes;             /* bit i: participant i voted yes */

#define ALL_YES (yes_votes == 7)

inline decide_commit() {
  assert(ALL_YES);                       /* validity */
  ever_commit = true;
  assert(!(ever_commit && ever_abort))   /* agreement */
}

inline decide_abort() {
  ever_abort = true;
  assert(!(ever_commit && ever_abort))   /* agreement */
}

/* A decision agent i can see: a peer that is up and decided, or the coordinator up and decided
 * (rule a; also DoCommit/Abort from the coordinator or a backup). */
#define peer_sees(i, j, s) ((i) != (j) && !adown[j] && ast[j] == (s))
#define sees_commit(i) (peer_sees(i, 0, COMMIT) || peer_sees(i, 1, COMMIT) || \
                        peer_sees(i, 2, COMMIT) || (cst == UP && cphase == C_COMMIT))
#define sees_abort(i)  (peer_sees(i, 0, ABORT) || peer_sees(i, 1, ABORT) || \
                        peer_sees(i, 2, ABORT) || (cst == UP && cphase == C_ABORT))
#define sees_decision(i) (sees_commit(i) || sees_abort(i))

/* Rule b: agent i is the backup when every lower-numbered participant is unreachable (down),
 * restarted, or does not know the transaction (INIT; asking it makes it record ABORT, see
 * `ask` and the round's start step). */
#ifdef UNINFORMED_BACKUP
#define not_candidate(j) (adown[j] || restarted[j])   /* BROKEN: INIT may be the backup */
#else
#define not_candidate(j) (adown[j] || restarted[j] || ast[j] == INIT)
#endif
#define is_backup(i) (((i) < 1 || not_candidate(0)) && ((i) < 2 || not_candidate(1)))
#ifdef NO_BACKUP
#define backup_may_run(i) true        /* BROKEN: every undecided agent runs the round */
#else
#define backup_may_run(i) is_backup(i)
#endif

/* Rule c: a restarted participant may run the round over all participants only when every one
 * is up and none is undecided and never restarted (such a one can still decide itself). */
#define fresh_undecided(j) (undecided(ast[j]) && !restarted[j])
#define rule_c_ready (!adown[0] && !adown[1] && !adown[2] && \
                      !fresh_undecided(0) && !fresh_undecided(1) && !fresh_undecided(2))
/* Three broken variants are checked on the design as it was before round identities, with
 * the promotion done at once while the backup lives (PLAIN_ROUNDS): each breaks agreement
 * there already, and numbering their rounds would only multiply their states. */
#if defined(NO_BACKUP) || defined(RESTARTED_DECIDES_ALONE) || defined(RULE_C_IGNORES_INIT)
#define PLAIN_ROUNDS
#endif

/* One round at a time: the lowest-numbered undecided participant runs it (all are up and
 * restarted or decided, so the others know who it is). Rounds running side by side would
 * abandon each other for ever: each one's questions void the other's MoveToPre. */
#define lower_undecided(i) (((i) > 0 && undecided(ast[0])) || ((i) > 1 && undecided(ast[1])))
#ifdef RESTARTED_DECIDES_ALONE
/* BROKEN: a restarted participant does not wait for the others to be up. */
#define restarted_may_run(i) true
#else
#ifdef RULE_C_EVERYONE_RUNS
#define restarted_may_run(i) rule_c_ready   /* BROKEN: every restarted participant runs it */
#else
#ifdef COORDINATOR_RUNS_RULE_C
/* The coordinator recovering with a pre-commit record runs the round itself (it answers the
 * agents' questions, so they know): the agents wait meanwhile, again one round at a time. */
#define restarted_may_run(i) (rule_c_ready && !lower_undecided(i) && \
                              !(cst == UP && cphase == C_RECOVER))
#else
#define restarted_may_run(i) (rule_c_ready && !lower_undecided(i))
#endif
#endif
#endif

/* The agent's termination timeout may fire: up, undecided, no coordinator message in flight
 * to it, and no decision to adopt (rule a comes first). */
#define timed_out(i) (!adown[i] && undecided(ast[i]) && msg[i] == NONE && !sees_decision(i))

/* An agent's round steps, asked by agent i's process (rule b, or rule c when `all`). */
#define R_IDLE    0
#define R_QUERY   1         /* StateQuery to participant ridx */
#define R_PROMOTE 2         /* MoveToPre to participant ridx */
#define R_ACKS    3         /* waiting for the MoveToPre answers */

/* A MoveToPre of round `id` moves a WAIT participant to PRE only when `id` is the last round
 * that asked it; otherwise it answers its state and changes nothing. */
#ifdef MOVE_TO_PRE_ANY_ROUND
#define accepts_move(j, id) true    /* BROKEN: any MoveToPre moves WAIT to PRE */
#else
#define accepts_move(j, id) (lastask[j] == (id))
#endif
#define in_round(s, j) (((rwait) >> (j)) & 1)
/* Participant j of agent s's round is settled for the commit: not counted WAIT, acknowledged
 * PRE, or unreachable (the MoveToPre was lost in j's crash: no answer and none in flight). */
#define move_settled(s, j) (!in_round(s, j) || ((racked[s] >> (j)) & 1) || mtp[(s) * NA + (j)] == 0)

/* Whom a round asks: rule b asks the reachable participants that have not restarted; rule c
 * asks all and waits for each answer. */
#ifdef COUNT_RESTARTED
#define counted(j, all) (!adown[j])
#else
#define counted(j, all) (!adown[j] && ((all) || !restarted[j]))
#endif

inline agent_decides(i, d) {
  ast[i] = d;
  if
  :: d == COMMIT -> decide_commit()
  :: else -> decide_abort()
  fi
}

inline end_round() {
  rph = R_IDLE; ridx = 0; seen = 0; rall = false; rid = 0; rwait = 0;
  rcur[i] = 0; racked[i] = 0; rrefused[i] = false
}

/* The backup's StateQuery for the transaction reaches a participant: it sets asked (no
 * PreCommit from now on) and answers its state. A participant with no record (INIT) records
 * ABORT first (presumed abort: nobody can be PRE without its yes, and a late CanCommit will be
 * answered no) and answers ABORT. */
inline ask(j) {
  asked[j] = true;
  lastask[j] = rid;
  if
  :: ast[j] == INIT -> ast[j] = ABORT; decide_abort()
  :: else -> skip
  fi;
  if
  :: ast[j] == WAIT -> rwait = rwait | (1 << j)
  :: else -> skip
  fi;
  seen = seen | (1 << ast[j])
}

/* A new round: a fresh identity, empty tallies. */
inline new_round() {
#ifdef PLAIN_ROUNDS
  rid = 1; rwait = 0; seen = 0
#else
  assert(nround < 255);
  nround++; rid = nround; rwait = 0; seen = 0
#endif
}

proctype Agent(byte i) {
  byte rph = R_IDLE;        /* round phase (in memory) */
  byte ridx = 0;            /* participant the round asks next */
  byte seen = 0;            /* states the round has seen, as bits 1 << state */
  bool rall = false;        /* rule c round: asks all participants, waits for each */
  byte rid = 0;             /* the round's identity */
  byte rwait = 0;           /* participants the round counted in WAIT, as bits 1 << j */
  byte vote;
  byte from;                /* sender of the MoveToPre being handled */
  byte mid;                 /* its round identity */

end_loop:
  do
  /* CanCommit: vote. A yes is WAIT, durable before the Vote leaves; a no is ABORT. An agent
   * that already recorded ABORT (asked before the CanCommit came) answers no. */
  :: atomic {
       !adown[i] && msg[i] == CANCOMMIT ->
       if
       :: ast[i] == INIT ->
          if
          :: ast[i] = WAIT; yes_votes = yes_votes | (1 << i); vote = V_YES
          :: ast[i] = ABORT; decide_abort(); vote = V_NO
          fi
       :: else -> vote = V_NO
       fi;
       if
       :: cst == UP && cphase == C_VOTES -> cvote[i] = vote
       :: else -> skip
       fi;
       vote = 0;
       msg[i] = NONE
     }

  /* PreCommit: only an agent in WAIT that is neither asked nor restarted records PRE and
   * acknowledges; any other answers its state, which the coordinator does not count. */
  :: atomic {
       !adown[i] && msg[i] == PRECOMMIT ->
       if
       :: ast[i] == WAIT && !asked[i] && !restarted[i] ->
          ast[i] = PRE;
          if
          :: cst == UP && cphase == C_ACKS -> cack[i] = true
          :: else -> skip
          fi
       :: else -> skip
       fi;
       msg[i] = NONE
     }

  /* Rule a: adopt a decision it can see (DoCommit/Abort, or an answer to its questions). */
  :: atomic {
       !adown[i] && rph == R_IDLE && undecided(ast[i]) && sees_commit(i) ->
       agent_decides(i, COMMIT)
     }
  :: atomic {
       !adown[i] && rph == R_IDLE && undecided(ast[i]) && sees_abort(i) && !sees_commit(i) ->
       agent_decides(i, ABORT)
     }

#ifdef TEXTBOOK_TIMEOUTS
  /* BROKEN: the textbook timeouts: WAIT aborts, PRE commits, asking nobody. */
  :: atomic { rph == R_IDLE && timed_out(i) && ast[i] == WAIT -> agent_decides(i, ABORT) }
  :: atomic { rph == R_IDLE && timed_out(i) && ast[i] == PRE -> agent_decides(i, COMMIT) }
#else
  /* Rule b: the backup starts the round. Asking the lower-numbered participants to find out
   * who is the backup is itself a StateQuery: one with no record records ABORT. */
  :: atomic {
       rph == R_IDLE && timed_out(i) && !restarted[i] && backup_may_run(i) ->
       new_round(); rcur[i] = rid;
       if
       :: i > 0 && !adown[0] && !restarted[0] && ast[0] == INIT -> ask(0)
       :: else -> skip
       fi;
       if
       :: i > 1 && !adown[1] && !restarted[1] && ast[1] == INIT -> ask(1)
       :: else -> skip
       fi;
       asked[i] = true;      /* the backup stops taking PreCommit itself */
       lastask[i] = rid;
       rph = R_QUERY; ridx = 0; rall = false
     }

  /* Rule c: a restarted participant runs the round over all participants, once all are up
   * and none is undecided and never restarted. */
  :: atomic {
       rph == R_IDLE && timed_out(i) && restarted[i] && restarted_may_run(i) ->
       new_round(); rcur[i] = rid;
#if !defined(RESTARTED_DECIDES_ALONE) && !defined(RULE_C_IGNORES_INIT)
       /* Finding out whether rule c may run asks every participant; one with no record
        * records ABORT (as in ask), so that it cannot vote yes and become an undecided
        * never-restarted participant while this round runs. */
       if
       :: ast[0] == INIT -> ask(0)
       :: else -> skip
       fi;
       if
       :: ast[1] == INIT -> ask(1)
       :: else -> skip
       fi;
       if
       :: ast[2] == INIT -> ask(2)
       :: else -> skip
       fi;
#endif
       asked[i] = true;
       lastask[i] = rid;
       rph = R_QUERY; ridx = 0;
#ifdef RESTARTED_DECIDES_ALONE
       rall = false          /* BROKEN: decides at once over whoever is reachable now */
#else
       rall = true
#endif
     }
#endif

  /* The round's StateQuery to participant ridx (atomic at that participant). Rule b skips an
   * unreachable or restarted participant; rule c waits until the participant is up. */
  :: atomic {
       rph == R_QUERY && ridx < NA && (ridx == i || !rall || !adown[ridx]) ->
       if
       :: ridx == i -> skip        /* its own state is read when it decides */
#ifdef RESTARTED_DECIDES_ALONE
       :: ridx != i && restarted[i] && !adown[ridx] -> ask(ridx)
#endif
       :: ridx != i && counted(ridx, rall) -> ask(ridx)
       :: else -> skip
       fi;
       ridx++
     }

  /* All answers in: over them and its own state now, any COMMIT -> commit; any ABORT ->
   * abort; any PRE -> promote, then commit; otherwise abort. */
  :: atomic {
       rph == R_QUERY && ridx == NA ->
       seen = seen | (1 << ast[i]);
       if
       :: (seen & (1 << COMMIT)) != 0 -> agent_decides(i, COMMIT); end_round()
       :: (seen & (1 << COMMIT)) == 0 && (seen & (1 << ABORT)) != 0 ->
          agent_decides(i, ABORT); end_round()
       :: (seen & ((1 << COMMIT) | (1 << ABORT))) == 0 && (seen & (1 << PRE)) != 0 ->
#ifdef NO_PROMOTION
          agent_decides(i, COMMIT); end_round()   /* BROKEN: commits without promoting */
#else
          if                                      /* the backup records PRE first itself */
          :: ast[i] == WAIT -> ast[i] = PRE
          :: else -> skip
          fi;
          rph = R_PROMOTE; ridx = 0
#endif
       :: (seen & ((1 << COMMIT) | (1 << ABORT) | (1 << PRE))) == 0 ->
          agent_decides(i, ABORT); end_round()
       fi
     }

  /* Promotion: the backup (already PRE) sends MoveToPre with the round's identity
   * to each participant it counted in WAIT, one per step (it may crash in between). A message
   * to a down agent is lost; a sent one stays in flight after the backup crashes. One message
   * at a time from one sender to one agent (a connection delivers in order). */
  :: atomic {
       rph == R_PROMOTE && ridx < NA && (ridx == i || !in_round(i, ridx) || adown[ridx] ||
                                          mtp[i * NA + ridx] == 0) ->
       if
#ifdef PLAIN_ROUNDS
       :: ridx != i && !adown[ridx] && ast[ridx] == WAIT -> ast[ridx] = PRE
       :: else -> skip
#else
       :: ridx != i && in_round(i, ridx) && !adown[ridx] -> mtp[i * NA + ridx] = rid
       :: ridx != i && in_round(i, ridx) && adown[ridx] ->
          rwait = rwait & ~(1 << ridx)     /* unreachable: not waited for */
       :: else -> skip
#endif
       fi;
       ridx++;
       if
       :: ridx == NA -> rph = R_ACKS
       :: else -> skip
       fi
     }
  /* Every counted WAIT participant acknowledged PRE or was lost in a crash: commit. */
  :: atomic {
       rph == R_ACKS && !rrefused[i] &&
       move_settled(i, 0) && move_settled(i, 1) && move_settled(i, 2) ->
       agent_decides(i, COMMIT); end_round()
     }
  /* Somebody answered the MoveToPre with another state: abandon the round, deciding nothing
   * (the next timeout runs a new round). */
  :: atomic { rph == R_ACKS && rrefused[i] -> end_round() }

  /* A MoveToPre reaches this agent: WAIT -> PRE (durable before the ack) when the round is
   * the last that asked it; otherwise it answers its state and changes nothing. The answer
   * reaches the sender's round if that round still runs. */
  :: atomic {
       !adown[i] && (mtp[0 * NA + i] != 0 || mtp[1 * NA + i] != 0 || mtp[2 * NA + i] != 0) ->
       if
       :: mtp[0 * NA + i] != 0 -> from = 0
       :: mtp[1 * NA + i] != 0 -> from = 1
       :: mtp[2 * NA + i] != 0 -> from = 2
       fi;
       mid = mtp[from * NA + i];
       mtp[from * NA + i] = 0;
       if
       :: ast[i] == WAIT && accepts_move(i, mid) -> ast[i] = PRE
       :: else -> skip
       fi;
       if
       :: rcur[from] == mid && ast[i] == PRE -> racked[from] = racked[from] | (1 << i)
       :: rcur[from] == mid && ast[i] != PRE -> rrefused[from] = true
       :: else -> skip
       fi;
       from = 0; mid = 0
     }

  /* Crash: the in-memory state and the messages in flight to it are gone; a participant with
   * a record is restarted from now on. */
  :: atomic {
       !adown[i] && acrashed[i] < CRASHES_EACH && crashes < MAX_CRASHES ->
       adown[i] = true; acrashed[i]++; crashes++;
#ifdef AGENTS_MAY_DIE
       if
       :: skip
       :: adead[i] = true     /* never returns */
       fi;
#endif
       restarted[i] = (ast[i] != INIT);
       asked[i] = false;
       lastask[i] = 0;
       msg[i] = NONE;
       mtp[0 * NA + i] = 0; mtp[1 * NA + i] = 0; mtp[2 * NA + i] = 0;
       end_round()
     }
  /* Restart from the log: the durable state is back. */
  :: atomic { adown[i] && !adead[i] -> adown[i] = false }
  od
}

/* Coordinator's ack (or vote) timeout for agent j: nothing from j and nothing in flight to j. */
#define no_reply_coming(j, got) (!(got) && msg[j] == NONE)

proctype Coordinator() {
  byte rph = R_IDLE;        /* rule c round of a restarted coordinator (COORDINATOR_RUNS_RULE_C) */
  byte ridx = 0;
  byte seen = 0;
  byte rid = 0;
  byte rwait = 0;
end_loop:
  do
  /* CanCommit to each agent in turn (lost if the agent is down). */
  :: atomic {
       cst == UP && cphase == C_CANCOMMIT ->
       if
       :: !adown[cidx] -> msg[cidx] = CANCOMMIT
       :: else -> skip
       fi;
       cidx++;
       if
       :: cidx == NA -> cidx = 0; cphase = C_VOTES
       :: else -> skip
       fi
     }
  /* Every vote yes: the pre-commit record is durable before any PreCommit leaves. */
  :: atomic {
       cst == UP && cphase == C_VOTES &&
       cvote[0] == V_YES && cvote[1] == V_YES && cvote[2] == V_YES ->
       cpre = true; cphase = C_PRECOMMIT; cidx = 0
     }
  /* Any no, or a vote timeout: abort (presumed abort, nothing logged). */
  :: atomic {
       cst == UP && cphase == C_VOTES &&
       (cvote[0] == V_NO || cvote[1] == V_NO || cvote[2] == V_NO ||
        no_reply_coming(0, cvote[0] != V_NONE) || no_reply_coming(1, cvote[1] != V_NONE) ||
        no_reply_coming(2, cvote[2] != V_NONE)) ->
       cphase = C_ABORT; decide_abort()
     }
  /* A database votes rollback (its XA PREPARE fails). The databases vote beside the agents
   * (ThreePhaseOptions::ask_agents_during_prepare), so this may come at any step of the vote
   * round, before or after any agent recorded WAIT; the coordinator then aborts as on a no. */
  :: atomic { cst == UP && (cphase == C_CANCOMMIT || cphase == C_VOTES) ->
              cphase = C_ABORT; cidx = 0; decide_abort() }
  /* The pre-commit record is appended beside the votes: it may be durable before they are all
   * in, and stays so whatever they are (a restart with it asks the agents: rule c). */
  :: atomic { cst == UP && (cphase == C_CANCOMMIT || cphase == C_VOTES) && !cpre -> cpre = true }
  /* PreCommit to each agent in turn. */
  :: atomic {
       cst == UP && cphase == C_PRECOMMIT ->
       if
       :: !adown[cidx] -> msg[cidx] = PRECOMMIT
       :: else -> skip
       fi;
       cidx++;
       if
       :: cidx == NA -> cidx = 0; cphase = C_ACKS
       :: else -> skip
       fi
     }
  /* Every agent acknowledged PRE: the commit record, then DoCommit (by visibility). */
  :: atomic {
       cst == UP && cphase == C_ACKS && cack[0] && cack[1] && cack[2] ->
       ccommit = true; cphase = C_COMMIT; decide_commit()
     }
  /* An ack timeout: decide nothing; the outcome is left to the agents. */
  :: atomic {
       cst == UP && cphase == C_ACKS &&
       (no_reply_coming(0, cack[0]) || no_reply_coming(1, cack[1]) ||
        no_reply_coming(2, cack[2])) ->
#ifdef COMMIT_ON_ACK_TIMEOUT
       ccommit = true; cphase = C_COMMIT; decide_commit()   /* BROKEN: commits on a guess */
#else
       cphase = C_PENDING
#endif
     }
  /* Pending, or restarted with a pre-commit record (rule c, as the coordinator's recovery
   * does it): adopt an agent's decision, otherwise wait; it never decides alone. */
  :: atomic {
       cst == UP && (cphase == C_PENDING || cphase == C_RECOVER) && rph == R_IDLE &&
       ((!adown[0] && ast[0] == COMMIT) || (!adown[1] && ast[1] == COMMIT) ||
        (!adown[2] && ast[2] == COMMIT)) ->
       cphase = C_COMMIT; decide_commit()
     }
  :: atomic {
       cst == UP && (cphase == C_PENDING || cphase == C_RECOVER) && rph == R_IDLE &&
       ((!adown[0] && ast[0] == ABORT) || (!adown[1] && ast[1] == ABORT) ||
        (!adown[2] && ast[2] == ABORT)) ->
       cphase = C_ABORT; decide_abort()
     }
  /* Its questions reach a participant with no record (INIT: CanCommit never reached it, when
   * the pre-commit record was appended before the votes were in): rule d, it records ABORT and
   * answers it, which the step above adopts. */
  :: atomic {
       cst == UP && (cphase == C_PENDING || cphase == C_RECOVER) && rph == R_IDLE &&
       ((!adown[0] && ast[0] == INIT) || (!adown[1] && ast[1] == INIT) ||
        (!adown[2] && ast[2] == INIT)) ->
       if
       :: !adown[0] && ast[0] == INIT -> ast[0] = ABORT
       :: !adown[1] && ast[1] == INIT -> ast[1] = ABORT
       :: !adown[2] && ast[2] == INIT -> ast[2] = ABORT
       fi;
       decide_abort()
     }
#ifdef COORDINATOR_RUNS_RULE_C
  /* Rule c read as the coordinator may also apply rule b over all participants once every
   * one is up and none is undecided and never restarted; it asks them all, waiting for each,
   * moves WAIT to PRE before a commit, and records a commit before telling anyone. */
  :: atomic {
       cst == UP && cphase == C_RECOVER && rph == R_IDLE && rule_c_ready &&
       !(ast[0] == COMMIT || ast[1] == COMMIT || ast[2] == COMMIT ||
         ast[0] == ABORT || ast[1] == ABORT || ast[2] == ABORT) ->
       new_round();
       if
       :: ast[0] == INIT -> ask(0)
       :: else -> skip
       fi;
       if
       :: ast[1] == INIT -> ask(1)
       :: else -> skip
       fi;
       if
       :: ast[2] == INIT -> ask(2)
       :: else -> skip
       fi;
       rph = R_QUERY; ridx = 0
     }
  :: atomic { cst == UP && rph == R_QUERY && ridx < NA && !adown[ridx] -> ask(ridx); ridx++ }
  :: atomic {
       cst == UP && rph == R_QUERY && ridx == NA ->
       if
       :: (seen & (1 << COMMIT)) != 0 ->
          ccommit = true; cphase = C_COMMIT; decide_commit(); rph = R_IDLE
       :: (seen & (1 << COMMIT)) == 0 && (seen & (1 << ABORT)) != 0 ->
          cphase = C_ABORT; decide_abort(); rph = R_IDLE
       :: (seen & ((1 << COMMIT) | (1 << ABORT))) == 0 && (seen & (1 << PRE)) != 0 ->
          rph = R_PROMOTE
       :: (seen & ((1 << COMMIT) | (1 << ABORT) | (1 << PRE))) == 0 ->
          cphase = C_ABORT; decide_abort(); rph = R_IDLE
       fi;
       ridx = 0; seen = 0;
       if
       :: rph != R_PROMOTE -> rid = 0; rwait = 0
       :: else -> skip
       fi
     }
  /* MoveToPre, by the same acceptance rule as an agent's round; any answer other than PRE
   * abandons the round. */
  :: atomic {
       cst == UP && rph == R_PROMOTE && ridx < NA ->
       if
       :: !adown[ridx] && ((rwait >> ridx) & 1) && ast[ridx] == WAIT &&
          accepts_move(ridx, rid) -> ast[ridx] = PRE; ridx++
       :: !adown[ridx] && ((rwait >> ridx) & 1) && ast[ridx] != PRE &&
          !(ast[ridx] == WAIT && accepts_move(ridx, rid)) ->
          rph = R_IDLE; ridx = 0; rid = 0; rwait = 0
       :: else -> ridx++
       fi
     }
  :: atomic {
       cst == UP && rph == R_PROMOTE && ridx == NA ->
       ccommit = true; cphase = C_COMMIT; decide_commit(); rph = R_IDLE; ridx = 0;
       rid = 0; rwait = 0
     }
#endif
  /* Crash: phase and tallies are gone; it restarts later, or never. */
  :: atomic {
       cst == UP && ccrashed < CRASHES_EACH && crashes < MAX_CRASHES ->
       ccrashed++; crashes++;
       rph = R_IDLE; ridx = 0; seen = 0; rid = 0; rwait = 0;
       cphase = C_OFF; cidx = 0;
       cvote[0] = V_NONE; cvote[1] = V_NONE; cvote[2] = V_NONE;
       cack[0] = false; cack[1] = false; cack[2] = false;
       if
       :: cst = DOWN
       :: cst = DEAD
       fi
     }
  /* Restart from the decision log: commit record -> commit; pre-commit record -> recover by
   * rule c; neither -> presumed abort (no agent can be PRE without a pre-commit record). */
  :: atomic {
       cst == DOWN ->
       cst = UP;
       if
       :: ccommit -> cphase = C_COMMIT
       :: !ccommit && cpre -> cphase = C_RECOVER
       :: !ccommit && !cpre -> cphase = C_ABORT; decide_abort()
       fi
     }
  od
}

init {
  atomic {
    run Coordinator();
    run Agent(0);
    run Agent(1);
    run Agent(2)
  }
}

/* Progress: every run ends with every agent up and decided or never involved (INIT), and the
 * coordinator up and decided, or gone for good. */
#define settled(j) (!adown[j] && !undecided(ast[j]))
#define all_settled (settled(0) && settled(1) && settled(2) && \
                     (cst == DEAD || (cst == UP && (cphase == C_COMMIT || cphase == C_ABORT))))
#ifndef AGENTS_MAY_DIE
ltl progress { <> [] all_settled }
#else
/* Non-blocking: with agents that may crash for good, every participant that never crashed
 * still decides (restarted ones may wait for the dead, as rule c says). */
#define survivor_settled(j) (acrashed[j] > 0 || !undecided(ast[j]))
ltl progress { <> [] (survivor_settled(0) && survivor_settled(1) && survivor_settled(2)) }
#endif
