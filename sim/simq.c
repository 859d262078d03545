#include "simq.h"

#include <math.h>
#include <string.h>

#include "alloc.h"

void jv_simq_init(jv_simq *q, uint64_t seed)
{
    memset(q, 0, sizeof(*q));
    jv_rng_seed(&q->rng, seed);
}

void jv_simq_fini(jv_simq *q)
{
    jv_free(q->heap);
    q->heap = NULL;
    q->n = q->cap = 0;
}

static bool before(const jv_simq_ev *a, const jv_simq_ev *b)
{
    return a->at_us < b->at_us || (a->at_us == b->at_us && a->order < b->order);
}

static void swap(jv_simq_ev *a, jv_simq_ev *b)
{
    jv_simq_ev t = *a;
    *a = *b;
    *b = t;
}

jv_err jv_simq_at(jv_simq *q, uint64_t delay_us, jv_simq_fn fn, void *arg)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        jv_simq_ev *h = jv_reallocarray(q->heap, cap, sizeof(*h));
        if (!h)
            return JV_ENOMEM;
        q->heap = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    q->heap[i] = (jv_simq_ev){q->now_us + delay_us, q->order++, fn, arg};
    while (i && before(&q->heap[i], &q->heap[(i - 1) / 2])) {
        swap(&q->heap[i], &q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    return JV_OK;
}

static jv_simq_ev pop(jv_simq *q)
{
    jv_simq_ev top = q->heap[0];
    q->heap[0] = q->heap[--q->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < q->n && before(&q->heap[l], &q->heap[m]))
            m = l;
        if (l + 1 < q->n && before(&q->heap[l + 1], &q->heap[m]))
            m = l + 1;
        if (m == i)
            break;
        swap(&q->heap[i], &q->heap[m]);
        i = m;
    }
    return top;
}

bool jv_simq_step(jv_simq *q, uint64_t until_us)
{
    if (q->n && q->heap[0].at_us <= until_us) {
        jv_simq_ev e = pop(q);
        q->now_us = e.at_us;
        q->ran++;
        e.fn(e.arg);
        return true;
    }
    if (until_us > q->now_us)
        q->now_us = until_us;
    return false;
}

uint64_t jv_simq_u64(jv_simq *q)
{
    return jv_rng_next(&q->rng);
}

/* A plain modulo (its bias is far below anything a run could show for the
 * small n used here), kept so that recorded seeds replay as they ran. */
uint64_t jv_simq_below(jv_simq *q, uint64_t n)
{
    return n ? jv_simq_u64(q) % n : 0;
}

double jv_simq_unit(jv_simq *q)
{
    return (double)(jv_simq_u64(q) >> 11) * 0x1.0p-53;
}

/* ln(x) for 0 < x <= 1 with basic arithmetic only (exact in IEEE 754 on
 * every machine, unlike libm's log): x = m 2^e, ln m = 2 atanh((m-1)/(m+1)). */
static double ln(double x)
{
    int e;
    double m = frexp(x, &e), s = (m - 1) / (m + 1), s2 = s * s, t = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += t / k;
        t *= s2;
    }
    return 2 * sum + e * 0.6931471805599453;
}

uint64_t jv_simq_exp(jv_simq *q, double mean)
{
    return (uint64_t)(-ln(1.0 - jv_simq_unit(q)) * mean);
}
