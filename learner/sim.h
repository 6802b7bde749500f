/* sim.h: the standard scenario of DESIGN.md ("How prediction is
 * measured"): a guest replays the future open-loop while the shadowing
 * engine pulls blocks in a policy's order over a link of fixed bandwidth;
 * reads of absent blocks stall until a demand fetch (RTT + transfer, taking
 * the link from the background copy) brings them.  Uses order.h, exactly
 * as the filter's engine does. */
#ifndef NBDSHADOW_SIM_H
#define NBDSHADOW_SIM_H

#include "learner.h"
#include "model.h"

#define SIM_CURVE_POINTS 200
/* The largest volume simulated, in blocks (4 TiB at 64K): its maps take
 * 3 x 8 MiB, and every run simulates a sequential copy of it (for the gap
 * closed), some seconds and, on a link fast enough to have every block
 * in flight at once, 1 GiB.  Beyond, time and memory run away (a request
 * near 1 PB at 64K blocks is 2^34 blocks); a larger volume needs larger
 * blocks. */
#define SIM_MAX_BLOCKS (UINT64_C (1) << 26)

struct sim_config {
  uint64_t block_size;
  double bandwidth;             /* bytes/s; 0: derive from the ratio */
  double bandwidth_ratio;       /* 1: the copy takes the future window */
  double rtt_s;
  bool sparse;                  /* only blocks touched anywhere are copied */
};

/* What every policy is run against: the volume, the link, the future. */
struct sim_scenario {
  struct sim_config cfg;
  const struct trace *future;
  uint64_t nblocks;             /* volume size in blocks */
  uint64_t *allocated;          /* bitmap; NULL unless sparse */
  uint64_t blocks_to_copy;
  double bandwidth;             /* bytes/s */
  uint64_t t0_us, duration_us;  /* the future window */
  uint64_t *oracle;             /* future blocks by first access */
  size_t noracle;
  uint64_t new_blocks;          /* of which the history never touched */
  /* NULL, or set by the caller: the sequence model's predictions, shared
   * by every run of this future after one model (seqtape.h). */
  struct seq_tape *seq_tape;
};

struct sim_point {
  double t;                     /* seconds since the future started */
  double coverage;              /* fraction of blocks_to_copy present */
  uint64_t stalls;              /* cumulative */
};

struct sim_result {
  char policy[32];
  uint64_t requests, stalls;
  uint64_t demand_blocks;       /* fetched for a waiting guest */
  double stall_ratio, stall_seconds;
  double time_to_full_copy;     /* seconds; < 0: never (policy none) */
  double start_s;               /* order_new and the first order_next: what
                                   the filter does when it starts */
  double observe_us;            /* mean order_observe cost per request */
  double next_us;               /* order_next cost (pull choice, deferred
                                   re-ranking, skipping present blocks)
                                   per request */
  struct sim_point curve[SIM_CURVE_POINTS + 1];
};

extern int sim_prepare (struct sim_scenario *s, const struct trace *history,
                        const struct trace *future,
                        const struct sim_config *cfg, char *err);
extern void sim_scenario_free (struct sim_scenario *s);
/* MODEL may be NULL for none, sequential and oracle. */
extern int sim_run (const struct sim_scenario *s, const char *policy,
                    const struct model *model, struct sim_result *res,
                    char *err);
/* (stalls_sequential - stalls_P) / (stalls_sequential - stalls_oracle);
 * NaN when sequential and oracle tie. */
extern double sim_gap_closed (uint64_t sequential, uint64_t oracle,
                              uint64_t policy);

#endif
