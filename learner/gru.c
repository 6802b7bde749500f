/* gru.c: a small GRU recurrent network over delta classes, in plain C.
 * Input: the one-hot class of the last delta; output: a softmax over the
 * next class.  Trained offline by back-propagation through time over
 * windows of BPTT_WINDOW steps, then updated online with one-step
 * truncated gradients (cheap enough to run on every guest request).
 *
 *   z = sigmoid(Wz x + Uz h + bz)         update gate
 *   r = sigmoid(Wr x + Ur h + br)         reset gate
 *   n = tanh(Wn x + r * (Un h) + bn)      candidate
 *   h' = (1 - z) * n + z * h
 *   p = softmax(O h' + bo)
 */
#include <math.h>
#include <string.h>

#include "seqmodel.h"

#define H GRU_HIDDEN
#define V SEQ_VOCAB
#define BPTT_WINDOW 16
#define TRAIN_RATE 0.05f
#define CLIP 1.0f

/* Views into the flat parameter array (gate g: 0 = z, 1 = r, 2 = n). */
#define W_IN(P, g, i, x) ((P)[((g) * H + (i)) * V + (x)])
#define U_OFF (3 * H * V)
#define W_REC(P, g, i, j) ((P)[U_OFF + ((g) * H + (i)) * H + (j)])
#define B_OFF (U_OFF + 3 * H * H)
#define BIAS(P, g, i) ((P)[B_OFF + (g) * H + (i)])
#define O_OFF (B_OFF + 3 * H)
#define W_OUT(P, k, i) ((P)[O_OFF + (k) * H + (i)])
#define BO_OFF (O_OFF + V * H)
#define B_OUT(P, k) ((P)[BO_OFF + (k)])

static float sigmoid (float a) { return 1 / (1 + expf (-a)); }

void
gru_init (struct gru *g, uint64_t seed)
{
  memset (g, 0, sizeof *g);
  for (int i = 0; i < GRU_NPARAMS; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    g->params[i] = ((float) (seed >> 40) / (1 << 24) - 0.5f) * 0.4f;
  }
}

static void
step_forward (const float *P, const float *h_prev, int x, struct gru_step *s)
{
  float logit[V], max = -INFINITY, sum = 0;

  memcpy (s->h_prev, h_prev, sizeof s->h_prev);
  s->x = x;
  for (int i = 0; i < H; i++) {
    float az = W_IN (P, 0, i, x) + BIAS (P, 0, i);
    float ar = W_IN (P, 1, i, x) + BIAS (P, 1, i);
    float un = 0;
    for (int j = 0; j < H; j++) {
      az += W_REC (P, 0, i, j) * h_prev[j];
      ar += W_REC (P, 1, i, j) * h_prev[j];
      un += W_REC (P, 2, i, j) * h_prev[j];
    }
    s->z[i] = sigmoid (az);
    s->r[i] = sigmoid (ar);
    s->un[i] = un;
  }
  for (int i = 0; i < H; i++) {
    s->n[i] = tanhf (W_IN (P, 2, i, x) + BIAS (P, 2, i) + s->r[i] * s->un[i]);
    s->h[i] = (1 - s->z[i]) * s->n[i] + s->z[i] * h_prev[i];
  }
  for (int k = 0; k < V; k++) {
    float a = B_OUT (P, k);
    for (int i = 0; i < H; i++)
      a += W_OUT (P, k, i) * s->h[i];
    logit[k] = a;
    if (a > max)
      max = a;
  }
  for (int k = 0; k < V; k++)
    sum += s->p[k] = expf (logit[k] - max);
  for (int k = 0; k < V; k++)
    s->p[k] /= sum;
}

/* Gradient of the cross-entropy of step S predicting class Y, plus DH_IN
 * flowing back from later steps; adds SCALE * gradient into G.  With
 * DH_PREV non-NULL, also returns the gradient w.r.t. the previous state.
 * Every weight is read before its own gradient is added, so G may be the
 * parameters themselves (online SGD: SCALE = -rate). */
static void
step_backward (const float *P, float *G, float scale, const struct gru_step *s,
               int y, const float *dh_in, float *dh_prev)
{
  float dlogit[V], dh[H], daz[H], dar[H], dan[H], dun[H], h[H], h_prev[H];
  const int x = s->x;

  /* Local copies: G may be the parameters, and the compiler vectorizes
   * the loops below only over arrays nothing else can alias.  Every
   * sum still adds its terms in the same order, so the results are the
   * same to the bit. */
  memcpy (h, s->h, sizeof h);
  memcpy (h_prev, s->h_prev, sizeof h_prev);
  for (int k = 0; k < V; k++)
    dlogit[k] = s->p[k] - (k == y);
  for (int i = 0; i < H; i++)
    dh[i] = dh_in ? dh_in[i] : 0;
  for (int k = 0; k < V; k++)
    for (int i = 0; i < H; i++)
      dh[i] += W_OUT (P, k, i) * dlogit[k];
  for (int k = 0; k < V; k++) {
    for (int i = 0; i < H; i++)
      W_OUT (G, k, i) += scale * dlogit[k] * h[i];
    B_OUT (G, k) += scale * dlogit[k];
  }
  for (int i = 0; i < H; i++) {
    float dn = dh[i] * (1 - s->z[i]);
    float dz = dh[i] * (h_prev[i] - s->n[i]);
    dan[i] = dn * (1 - s->n[i] * s->n[i]);
    dun[i] = dan[i] * s->r[i];
    dar[i] = dan[i] * s->un[i] * s->r[i] * (1 - s->r[i]);
    daz[i] = dz * s->z[i] * (1 - s->z[i]);
    if (dh_prev)
      dh_prev[i] = dh[i] * s->z[i];
  }
  /* All recurrent weights are read before the first is updated. */
  if (dh_prev)
    for (int i = 0; i < H; i++) {
      const float dgate[3] = { daz[i], dar[i], dun[i] };
      for (int g = 0; g < 3; g++)
        for (int j = 0; j < H; j++)
          dh_prev[j] += W_REC (P, g, i, j) * dgate[g];
    }
  for (int i = 0; i < H; i++) {
    const float dgate[3] = { daz[i], dar[i], dun[i] };
    for (int g = 0; g < 3; g++)
      for (int j = 0; j < H; j++)
        W_REC (G, g, i, j) += scale * dgate[g] * h_prev[j];
    W_IN (G, 0, i, x) += scale * daz[i];
    W_IN (G, 1, i, x) += scale * dar[i];
    W_IN (G, 2, i, x) += scale * dan[i];
    BIAS (G, 0, i) += scale * daz[i];
    BIAS (G, 1, i) += scale * dar[i];
    BIAS (G, 2, i) += scale * dan[i];
  }
}

void
gru_train (struct gru *g, const int *classes, size_t n, int epochs)
{
  static const float zero[H];
  struct gru_step steps[BPTT_WINDOW];
  float grad[GRU_NPARAMS], dh[H], dh_prev[H];

  for (int e = 0; e < epochs; e++) {
    const float *h = zero;
    float carry[H] = { 0 };

    for (size_t start = 0; start + 1 < n; start += BPTT_WINDOW) {
      size_t len = n - 1 - start < BPTT_WINDOW ? n - 1 - start : BPTT_WINDOW;

      for (size_t t = 0; t < len; t++) {
        step_forward (g->params, h, classes[start + t], &steps[t]);
        h = steps[t].h;
      }
      memset (grad, 0, sizeof grad);
      memset (dh, 0, sizeof dh);
      for (size_t t = len; t-- > 0;) {
        step_backward (g->params, grad, 1, &steps[t], classes[start + t + 1],
                       dh, dh_prev);
        memcpy (dh, dh_prev, sizeof dh);
      }
      for (int i = 0; i < GRU_NPARAMS; i++)
        g->params[i] -= TRAIN_RATE * fmaxf (-CLIP, fminf (CLIP, grad[i]));
      /* The next window starts from this one's final state. */
      memcpy (carry, h, sizeof carry);
      h = carry;
    }
  }
  g->started = false;
}

void
gru_observe (struct gru *g, int cls, float rate)
{
  static const float zero[H];
  float h[H];

  if (g->started)
    step_backward (g->params, g->params, -rate, &g->cur, cls, NULL, NULL);
  memcpy (h, g->started ? g->cur.h : zero, sizeof h);
  step_forward (g->params, h, cls, &g->cur);
  g->started = true;
}

void
gru_distribution (const struct gru *g, double *p)
{
  for (int k = 0; k < V; k++)
    p[k] = g->started ? g->cur.p[k] : 0;
}
