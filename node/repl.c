/*
 * repl.c - see repl.h for the protocol.
 *
 * Per peer, an exchange goes IDLE -> SENDING (request out) -> APPLYING
 * (the reply's batches on the writer thread) -> IDLE. A push requested
 * while busy sets `again`; the exchange that ends runs once more.
 *
 * Who speaks is proven before anything a message says is used: every
 * message is signed by its sender's node key (wire.h), a request is bound
 * to this node's id and fresh (its stamp above the last one accepted from
 * that sender, within the clock-skew bound), a reply echoes the stamp of
 * the request it answers, and the sender must be on the trust list. A
 * request that fails any of this gets a refusal and nothing else; a reply
 * that fails it is not used. A vector claiming more of this node's own log
 * than it holds is refused too (check_request, check_reply). Peer ids are
 * bound to addresses by proven replies; a proven request from a trusted
 * node names its own address only for an entry whose node is unknown.
 *
 * Batches received (in a request or a reply) are filtered here on the loop
 * before costing any signature work: malformed headers, batches this node
 * has applied already (its version vector), stamps beyond the clock skew
 * bound. The rest go to the writer, which checks signatures, chains and
 * trust and applies them in one transaction.
 */
#include "repl.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "timefmt.h"
#include "log.h"
#include "query.h"
#include "repl_host.h"
#include "snapshot.h"
#include "vvlink.h"
#include "wire.h"

#define COMPRESS_MIN 1024
#define MAX_SOURCES  256
#define MAX_BLOCKED  32
#define LOG_BATCHES  4096 /* batches read per origin per message, at most */
/* A peer's clock offset is believed this long after it was measured. */
#define OFFSET_TTL_MS 60000

typedef enum {
    P_IDLE,
    P_BUILDING, /* its request is being built off the loop */
    P_SENDING,
    P_OPENING, /* its reply is being opened off the loop (open_job) */
    P_APPLYING
} pstate;

/* Reasons a batch is refused or held, each logged once per peer. */
typedef enum {
    RS_SIGNATURE,
    RS_LINK,
    RS_EQUIVOCATION,
    RS_UNTRUSTED,
    RS_MALFORMED,
    RS_SKEW,
    RS_HELD_FULL,
    RS_COUNT
} reason;

static const char *reason_name[RS_COUNT] = {
    "bad_signature", "broken_link", "equivocation", "untrusted",
    "malformed",     "clock_skew",  "held_full"};

/* Reasons a whole message is refused: before its sender is known (the
 * frame and the decoder), then while proving who sent it. Counted in
 * jarvis_repl_refused_messages_total{reason}. */
typedef enum {
    MR_TOO_BIG,
    MR_UNKNOWN_KEY,
    MR_BAD_TAG,
    MR_KEY_MISMATCH,
    MR_MALFORMED,
    MR_VERSION,
    MR_BAD_SIGNATURE,
    MR_WRONG_RECIPIENT,
    MR_STALE,
    MR_UNTRUSTED,
    MR_CLAIM,
    MR_COUNT
} mreason;

static const char *mreason_name[MR_COUNT] = {
    "too_big",   "unknown_key", "bad_tag",         "key_mismatch",
    "malformed", "version",     "bad_signature",   "wrong_recipient",
    "stale",     "untrusted",   "claim_beyond_own"};

/* Why a peer cannot be talked to, beyond "unreachable": shown as its
 * state (peers ls, members, health) until an exchange succeeds. */
typedef enum {
    T_NONE,
    T_KEY,     /* it told us it lacks our sending key, or we lack its */
    T_VERSION, /* it speaks another protocol version */
    T_NET,     /* no connection: last_error says why (on_link) */
} trouble;

typedef struct peer {
    jv_repl *r;
    char *addr;
    jv_tpeer *tp;
    jv_id id;
    bool id_known;
    jv_vv have; /* what it holds, as it last told us (plus what we sent) */
    bool have_known;
    jv_vv sent; /* batches in the request outstanding, by origin */
    jv_vv gave; /* per origin, the newest batch we sent it (push or reply) */
    struct ex_job *building;  /* the request being built (P_BUILDING) */
    struct open_job *opening; /* its reply being opened (P_OPENING) */
    uint64_t req_stamp;       /* the stamp of the request outstanding */
    uint64_t reply_us;        /* when its reply arrived (measure) */
    uint64_t have_stamp;      /* the stamp of its message `have` is from */
    bool probing;       /* it went to no id (a first contact): see probe */
    bool stale_retried; /* a `stale` refusal was answered by a new request */
    bool rebased;       /* so was a vector base one of us did not keep */
    /* What it said it holds in its own messages (their have-vectors),
     * and what it acknowledged receiving from us (a request it answered),
     * over the last one to two exchange timeouts: facts, unlike `have`,
     * which also counts replies we sent that may have been lost. Nothing
     * it is known to hold this way is sent to it, whatever an older
     * vector says (see theirs()). */
    jv_vv known[2];
    uint64_t known_since_ms;
    uint64_t claim_self; /* our own origin in its last reply's vector */
    /* What our requests carried and it answered (it received them, but
     * may not have applied them: it holds aside or refuses some), and the
     * stamp of its latest such reply. Only a request of its older than
     * that reply is answered as if it had them: a newer request's vector
     * says what it holds (see delivered_for). */
    jv_vv delivered;
    uint64_t delivered_stamp;
    uint64_t delivered_ms; /* when, on our clock: forgotten after two
                              exchange timeouts, as the facts are */
    /* Its clock minus ours, in microseconds, measured from the stamps of
     * our request and its reply (NTP's way: the reply was made halfway
     * through the round trip), and that round trip; when, on our clock. */
    int64_t offset_us;
    uint64_t rtt_us;
    uint64_t offset_at_ms;
    /* Per origin, whether news of it is pushed to this peer: at first to
     * the `fanout` first peers in the order of `rank` (a fixed random
     * order), then adapted as Plumtree does with its eager and lazy
     * links: a peer whose reply shows it held what we pushed already gets
     * no more of that origin from us (it gets it from someone else); a
     * peer that had to pull an origin's batches from us, or whose reply
     * shows it still lacking news we have held for a while (regraft),
     * gets them pushed from then on. The pushes settle into a spanning
     * structure instead of flooding. Kept as a vector (a sorted map of
     * origins): LINK_LAZY or LINK_EAGER per origin learnt, none for the
     * others. */
    jv_vv links;
    uint64_t rank;
    bool fanout_slot; /* among the first `fanout` when last ranked (kick) */
    pstate state;
    /* The push being made follows a pull's reply, which told exactly
     * what p lacks. If that is more than a message, p is catching up,
     * pulling from one peer at a time: pushing it the same backlog as
     * well (with news of ours still to push, or not) would bring it
     * twice, so nothing is pushed; its pulls bring the news too. */
    bool repair;
    bool pulling;     /* the exchange under way asked for a full reply */
    uint64_t pull_ms; /* when it was sent, on our clock */
    bool recalled;    /* its request was taken back to go under a new key */
    bool again;
    bool again_pull;
    bool reachable;
    bool caught_up; /* an exchange ended with nothing more to pull */
    bool is_self;   /* this node's own address: listed, never dialled */
    uint64_t last_contact_ms;
    uint64_t next_try_ms;
    unsigned failures;
    uint64_t bytes_in, bytes_out, batches_in, batches_out;
    char last_error[160];
    uint32_t logged; /* reasons already logged */
    trouble trouble;
    unsigned version;       /* its protocol version, 0 until known */
    char key_seen[9];       /* the key id it last sealed a message with */
    uint64_t down_since_ms; /* unreachable since (0: reachable) */
    struct peer *next;
} peer;

/* Senders that are not our peers, for once-per-reason logging. */
typedef struct {
    jv_id id;
    uint32_t logged;
} source;

/* The last request stamp accepted from a sender (fresh_ok). */
typedef struct {
    jv_id id;
    uint64_t stamp;
} fresh_entry;
/* An origin whose batches are held for want of trust. A joining node
 * often learns that trust a moment later (the trust list replicates too):
 * the hint to trust it is logged only if the hold lasts HOLD_LOG_MS. */
#define MAX_HOLD_NOTES 16
#define HOLD_LOG_MS    5000
typedef struct {
    jv_id origin;
    char who[80]; /* the sender, for the log line */
    uint64_t since_ms;
    bool said;
} hold_note;

/* Nodes whose latest vector is kept for bundles (jv_repl_said). */
#define MAX_TOLD 64

typedef struct {
    jv_id id;
    bool used;
    uint64_t at_ms;
    jv_vv vv;
} told;

struct jv_repl {
    jv_node *node;
    jv_repl_opts o;
    jv_keyring ring;
    bool keyed;
    jv_transport *tp;
    peer *peers;
    size_t npeers;
    jv_vv applied; /* this node's applied vector */
    /* Batches at the writer (applied or not yet), by origin, while any
     * apply job is: counted in our vectors as held, so that a peer whose
     * push brings them again learns it is a second one (and prunes), and
     * not taken twice here. */
    jv_vv pending;
    unsigned pending_jobs;
    /* Per origin, when its latest news reached this node, on our
     * clock: how long a peer has gone without what we could have pushed
     * it (regraft), and whether a peer that holds it got it ahead of our
     * push (only_pushed). */
    jv_vv news_ms;
    jv_vvlinks *links;  /* the vectors messages are based on (vvlink.h) */
    struct peer *chain; /* the peer a pull goes on with (`more`) */
    jv_repl_host host;  /* the world: clock, timer, network, jobs */
    char bound[256];
    char *blocked[MAX_BLOCKED];
    size_t nblocked;
    unsigned applying; /* apply jobs at the writer */
    unsigned serving;  /* answers being built on the sync reader thread */
    uint64_t delay_ms[JV_REPL_DELAY_SAMPLES]; /* a ring: the newest delays */
    size_t ndelay;                            /* delays recorded, ever */
    told told[MAX_TOLD];
    bool stopping;
    bool transport_closed;
    void (*stop_done)(void *);
    void *stop_arg;
    source sources[MAX_SOURCES];
    size_t nsources;
    uint64_t msg_log_ms[MR_COUNT];
    uint64_t stamp; /* the last stamp this node put on a message */
    /* Request stamps accepted, per trusted sender (at most MAX_SOURCES:
     * only proven, trusted senders get an entry). A request at or below
     * `fresh_floor` is refused from anyone: it rises to the stamp of an
     * entry evicted for room, and starts at this node's start, so that
     * nothing sent before it started can be replayed to it. */
    fresh_entry fresh[MAX_SOURCES];
    size_t nfresh;
    uint64_t fresh_floor;
    hold_note holds[MAX_HOLD_NOTES]; /* untrusted origins, said if it lasts */
    size_t nholds;
    uint64_t rng;
    jv_buf scratch;
    char frame_key[9];     /* key id of the frame being opened, for logs */
    unsigned peer_version; /* of the message refused as JV_EVERSION */
    bool rechecking;       /* a re-check of held batches is at the writer */
    bool held_scanning;    /* a scan of the held area is on the sync reader */
    uint64_t started_ms;   /* silence is counted from here at most */
    /* A snapshot being received (one at a time, from one peer) or
     * installed (snapshot.h). */
    struct {
        bool active, installing;
        bool confirmed; /* a second peer sent the same digest */
        bool asked;     /* a second peer was asked for its digest */
        bool answered;  /* and its answer compared (logged) */
        jv_id asked_of;
        jv_buf vvsec;     /* the vector section of the snapshot's encoding */
        uint64_t last_ms; /* the last chunk taken */
        jv_id from;
        jv_wire_snap head; /* maker, stamp, digest, sig, total */
        jv_buf data;
    } snap;
    int snap_fault;      /* tests: what to do to the snapshots sent */
    uint64_t horizon_ms; /* --peer-horizon, as the last frontier used */
    bool skew_logged;    /* the clock was found skewed (logged once) */
};

typedef struct {
    jv_write_req wr;
    jv_repl *r;
    char *src_addr; /* the peer it came from, if one of ours */
    jv_id src_id;
    bool from_reply; /* continue the exchange of src_addr when done */
    bool more;
    jv_remote_batch *rb;
    uint64_t *hlc;
    size_t n;
    uint8_t *data;
    bool recheck; /* no batches: held ones whose time has come */
} apply_job;

static void exchange(peer *p, bool pull);
static void sync_with(peer *p);
static void mark_self(peer *p);
static void recheck_held(jv_repl *r);

/* -- small helpers -------------------------------------------------------- */

static uint64_t now_ms(const jv_repl *r)
{
    return r->host.now_ms(r->host.ctx);
}

static void on_timer(void *arg);

static void timer_arm(jv_repl *r, uint64_t delay_ms)
{
    r->host.timer_start(r->host.ctx, delay_ms, on_timer, r);
}

static uint64_t rnd(jv_repl *r)
{
    /* xorshift64*: jitter and peer picks need no more than this. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ull;
}

static jv_metrics *M(jv_repl *r)
{
    return r->node->metrics;
}

static void count(jv_repl *r, const char *name, const char *label,
                  const char *value, double by)
{
    char l[96];
    if (label)
        snprintf(l, sizeof(l), "%s=\"%s\"", label, value);
    jv_metrics_add(M(r), name, label ? l : NULL, by);
}

static peer *find_addr(const jv_repl *r, const char *addr)
{
    for (peer *p = r->peers; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    return NULL;
}

static peer *find_id(const jv_repl *r, const jv_id *id)
{
    for (peer *p = r->peers; p; p = p->next)
        if (p->id_known && jv_id_eq(&p->id, id))
            return p;
    return NULL;
}

static bool is_blocked(const jv_repl *r, const char *addr, const jv_id *id)
{
    char hex[JV_ID_HEX] = "";
    if (id)
        jv_id_hex(id, hex);
    for (size_t i = 0; i < r->nblocked; i++)
        if ((addr && strcmp(r->blocked[i], addr) == 0) ||
            (id && strcmp(r->blocked[i], hex) == 0))
            return true;
    return false;
}

/* Remembers when batches of origin were first held as untrusted. */
static void note_hold(jv_repl *r, const jv_id *origin, const char *addr,
                      const jv_id *from)
{
    for (size_t i = 0; i < r->nholds; i++)
        if (jv_id_eq(&r->holds[i].origin, origin))
            return;
    if (r->nholds == MAX_HOLD_NOTES)
        return;
    hold_note *h = &r->holds[r->nholds++];
    memset(h, 0, sizeof(*h));
    h->origin = *origin;
    h->since_ms = now_ms(r);
    char fhex[JV_ID_HEX] = "?";
    if (from)
        jv_id_hex(from, fhex);
    snprintf(h->who, sizeof(h->who), "%s", addr ? addr : fhex);
}

/* The held area is scanned off the loop, on the sync reader thread (it
 * may hold thousands of batches: a scan of a full one took 24 to 38 ms),
 * once per timer tick: for the notes of untrusted origins and for held
 * batches that can go now. */
typedef struct {
    jv_read_job job;
    jv_repl *r;
    jv_vv applied;               /* r->applied at submit */
    jv_id notes[MAX_HOLD_NOTES]; /* the notes' origins at submit */
    size_t nnotes;
    bool still[MAX_HOLD_NOTES]; /* out: the origin is still held */
    bool ready;                 /* out: one can be applied now */
} held_job;

static jv_err held_row(void *arg, const jv_held_row *h)
{
    held_job *j = arg;
    for (size_t i = 0; h->reason == JV_EUNTRUSTED && i < j->nnotes; i++)
        if (jv_id_eq(&h->origin, &j->notes[i]))
            j->still[i] = true;
    /* A 'gap' at the head of its origin's log waits for nothing but the
     * time its stamp was held for (apply.c): it can go now. */
    if (h->reason == JV_EGAP &&
        h->first_seq <= jv_vv_get(&j->applied, &h->origin) + 1)
        j->ready = true;
    return JV_OK;
}

static jv_err held_run(jv_store *st, void *arg)
{
    return jv_store_held_list(st, held_row, arg);
}

/* An origin still held HOLD_LOG_MS after its first batch gets the hint,
 * once; a note whose batches were released goes. Notes made since the
 * scan was submitted wait for the next. */
static void check_holds(jv_repl *r, const held_job *j, uint64_t now)
{
    for (size_t i = r->nholds; i-- > 0;) {
        hold_note *h = &r->holds[i];
        size_t k = 0;
        while (k < j->nnotes && !jv_id_eq(&j->notes[k], &h->origin))
            k++;
        if (k < j->nnotes && !j->still[k]) { /* trusted since, or dropped */
            *h = r->holds[--r->nholds];
            continue;
        }
        if (h->said || now - h->since_ms < HOLD_LOG_MS)
            continue;
        char ohex[JV_ID_HEX];
        jv_id_hex(&h->origin, ohex);
        jv_warn("repl",
                "holding batches of origin %.16s (not trusted) from %s "
                "for %llu s; to accept them: jarvisctl trust add %s",
                ohex, h->who, (unsigned long long)((now - h->since_ms) / 1000),
                ohex);
        h->said = true;
    }
}

static void maybe_finish_stop(jv_repl *r);

static void held_done(void *arg, jv_err err, const char *msg)
{
    held_job *j = arg;
    jv_repl *r = j->r;
    r->serving--;
    r->held_scanning = false;
    if (err)
        jv_error("repl", "cannot read the held batches: %s (%s)",
                 jv_strerror(err), msg);
    else if (!r->stopping) {
        check_holds(r, j, now_ms(r));
        if (j->ready)
            recheck_held(r);
    }
    jv_vv_fini(&j->applied);
    jv_free(j);
    maybe_finish_stop(r);
}

static void held_scan(jv_repl *r)
{
    if (r->held_scanning || r->stopping)
        return;
    held_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return;
    j->r = r;
    jv_vv_init(&j->applied);
    j->nnotes = r->nholds;
    for (size_t i = 0; i < r->nholds; i++)
        j->notes[i] = r->holds[i].origin;
    j->job.fn = held_run;
    j->job.done = held_done;
    j->job.arg = j;
    if (jv_vv_copy(&j->applied, &r->applied) != JV_OK ||
        r->host.read(r->host.ctx, &j->job) != JV_OK) {
        jv_vv_fini(&j->applied);
        jv_free(j);
        return;
    }
    r->serving++;
    r->held_scanning = true;
}

/* Logs a refusal once per sender and reason; counts it every time. */
static void refuse(jv_repl *r, peer *p, const jv_id *from, reason why,
                   const jv_id *origin, size_t n)
{
    char label[64];
    snprintf(label, sizeof(label), "refused_%s", reason_name[why]);
    if (why == RS_UNTRUSTED)
        snprintf(label, sizeof(label), "held_untrusted");
    else if (why == RS_SKEW)
        snprintf(label, sizeof(label), "held_clock_skew");
    else if (why == RS_HELD_FULL)
        snprintf(label, sizeof(label), "dropped_held_full");
    count(r, "jarvis_repl_batches_total", "result", label, (double)n);
    if (why == RS_UNTRUSTED && origin) {
        note_hold(r, origin, p ? p->addr : NULL, from);
        return;
    }

    uint32_t *logged = NULL;
    if (p) {
        logged = &p->logged;
    } else if (from) {
        for (size_t i = 0; i < r->nsources && !logged; i++)
            if (jv_id_eq(&r->sources[i].id, from))
                logged = &r->sources[i].logged;
        if (!logged && r->nsources < MAX_SOURCES) {
            r->sources[r->nsources].id = *from;
            r->sources[r->nsources].logged = 0;
            logged = &r->sources[r->nsources++].logged;
        }
    }
    if (logged && (*logged & (1u << why)))
        return;
    if (logged)
        *logged |= 1u << why;
    char ohex[JV_ID_HEX] = "?", fhex[JV_ID_HEX] = "?";
    if (origin)
        jv_id_hex(origin, ohex);
    if (from)
        jv_id_hex(from, fhex);
    const char *who = p ? p->addr : fhex;
    if (why == RS_UNTRUSTED)
        jv_warn("repl",
                "holding batches of origin %.16s (not trusted) from %s; "
                "to accept them: jarvisctl trust add %s",
                ohex, who, ohex);
    else if (why == RS_SKEW)
        jv_warn("repl",
                "holding batches of origin %.16s from %s: stamped more than "
                "--max-clock-skew ahead of this node's clock; they are "
                "applied once within it (logged once per peer)",
                ohex, who);
    else
        jv_warn("repl",
                "refused batches of origin %.16s from %s: %s (logged once "
                "per peer and reason; see jarvis_repl_batches_total)",
                ohex, who, reason_name[why]);
}

/* Message refusals: counted always, logged at most once a minute per
 * reason. from: the sender it names, if the message got that far (not
 * proven unless the reason comes after the signature check). */
static void refuse_msg(jv_repl *r, mreason why, const jv_id *from)
{
    const char *name = mreason_name[why];
    count(r, "jarvis_repl_refused_messages_total", "reason", name, 1);
    uint64_t now = now_ms(r);
    if (now - r->msg_log_ms[why] < 60000 && r->msg_log_ms[why])
        return;
    r->msg_log_ms[why] = now;
    char hex[JV_ID_HEX] = "";
    if (from)
        jv_id_hex(from, hex);
    if (why == MR_UNTRUSTED)
        jv_warn("repl",
                "refused a peer message from node %.16s: it is not on the "
                "trust list (to accept it: jarvisctl trust add %s)",
                hex, hex);
    else if (why == MR_CLAIM)
        jv_warn("repl",
                "refused a peer message from node %.16s: its vector claims "
                "more of this node's own log than this node has (a forged "
                "claim, or this database was copied back from an older "
                "state without jarvisctl restore)",
                hex);
    else if (why == MR_VERSION)
        jv_warn("repl",
                "refused a peer message of protocol version %u (this node "
                "speaks version %d); told its sender",
                r->peer_version, JV_WIRE_VERSION);
    else if (why == MR_UNKNOWN_KEY || why == MR_KEY_MISMATCH) {
        char keys[128];
        jv_keyring_describe(r->keyed ? &r->ring : NULL, keys, sizeof(keys));
        jv_warn("repl",
                "key mismatch: refused a peer message sealed under %s "
                "(cluster keys here: %s); told its sender which keys this "
                "node accepts",
                r->frame_key[0] ? r->frame_key : "no key", keys);
    } else if (from)
        jv_warn("repl", "refused a peer message naming node %.16s: %s", hex,
                name);
    else
        jv_warn("repl", "dropped a peer message: %s", name);
}

static mreason open_reason(jv_err err)
{
    return err == JV_ENOTFOUND ? MR_UNKNOWN_KEY
           : err == JV_ECRYPTO ? MR_BAD_TAG
           : err == JV_EPERM   ? MR_KEY_MISMATCH
                               : MR_MALFORMED;
}

/* What opening a frame found, besides its message. */
typedef struct {
    bool opened;      /* unsealed: a failure was the decoder's */
    unsigned version; /* a message of another version: the one it speaks */
} open_info;

/* Decodes an unsealed frame's message into m (borrowing from plain or
 * scratch). Any thread. */
static jv_err decode_plain(size_t max_message, const jv_buf *plain,
                           jv_buf *scratch, jv_msg *m, open_info *info)
{
    jv_err err =
        jv_msg_decode(plain->data, plain->len, max_message, scratch, m);
    if (err == JV_EVERSION)
        info->version =
            jv_msg_peek_version(plain->data, plain->len, max_message, scratch);
    return err;
}

/* Opens a frame under ring (NULL: plaintext) and decodes its message into
 * m (borrowing from plain or scratch). Any thread. */
static jv_err open_decode(const jv_keyring *ring, size_t max_message,
                          const uint8_t *msg, size_t len, jv_buf *plain,
                          jv_buf *scratch, jv_msg *m, open_info *info)
{
    info->opened = false;
    jv_err err = jv_open(ring, msg, len, plain);
    if (err)
        return err;
    info->opened = true;
    return decode_plain(max_message, plain, scratch, m, info);
}

/* Counts a frame open_decode failed on. */
static void open_refused(jv_repl *r, jv_err err, const open_info *info)
{
    if (!info->opened) {
        refuse_msg(r, open_reason(err), NULL);
        return;
    }
    if (err == JV_EVERSION)
        r->peer_version = info->version;
    refuse_msg(r,
               err == JV_ETOOBIG    ? MR_TOO_BIG
               : err == JV_EVERSION ? MR_VERSION
                                    : MR_MALFORMED,
               NULL);
}

/* -- proving who speaks --------------------------------------------------- */

/* The stamp of the next message: microseconds of the wall clock, strictly
 * increasing over everything this node sends. */
static uint64_t next_stamp(jv_repl *r)
{
    uint64_t now = now_ms(r) * 1000;
    r->stamp = now > r->stamp ? now : r->stamp + 1;
    return r->stamp;
}

/* Named by a `trust` line of the configuration, with no replicated trust
 * decision about it yet: such a line's entry is on its way to the store
 * at start (a write queued behind the first exchanges), and this is the
 * bootstrap it asks for. A decision, a removal included, overrides it. */
static bool configured(jv_repl *r, const jv_id *id)
{
    const jv_strlist *l = &r->node->cfg->trust;
    for (size_t i = 0; i < l->n; i++) {
        jv_id c;
        if (jv_id_from_hex(l->v[i], strlen(l->v[i]), &c) == JV_OK &&
            jv_id_eq(&c, id))
            return !jv_trustview_entry(r->node->trust, id);
    }
    return false;
}

static bool is_trusted(jv_repl *r, const jv_id *id)
{
    return jv_trustview_trusted(r->node->trust, id) || configured(r, id);
}

/* A request's stamp is fresh when it is above the last one accepted from
 * its sender (and the floor), and within the clock-skew bound of our own
 * clock either way: an old message cannot be replayed, and a stamp far
 * ahead cannot block the sender's next ones. */
static bool fresh_ok(const jv_repl *r, const jv_id *from, uint64_t stamp)
{
    uint64_t now = now_ms(r) * 1000;
    uint64_t skew = r->node->hlc.max_skew_ms * 1000;
    if (stamp <= r->fresh_floor || stamp > now + skew || stamp + skew < now)
        return false;
    for (size_t i = 0; i < r->nfresh; i++)
        if (jv_id_eq(&r->fresh[i].id, from))
            return stamp > r->fresh[i].stamp;
    return true;
}

static void fresh_note(jv_repl *r, const jv_id *from, uint64_t stamp)
{
    size_t at = r->nfresh, low = 0;
    for (size_t i = 0; i < r->nfresh && at == r->nfresh; i++)
        if (jv_id_eq(&r->fresh[i].id, from))
            at = i;
    if (at == r->nfresh && r->nfresh == MAX_SOURCES) {
        /* Room for a new sender: the oldest entry goes, and the floor
         * rises to its stamp, so that what it guarded stays refused. */
        for (size_t i = 1; i < r->nfresh; i++)
            if (r->fresh[i].stamp < r->fresh[low].stamp)
                low = i;
        if (r->fresh[low].stamp > r->fresh_floor)
            r->fresh_floor = r->fresh[low].stamp;
        at = low;
    } else if (at == r->nfresh) {
        r->nfresh++;
    }
    r->fresh[at].id = *from;
    r->fresh[at].stamp = stamp;
}

/* True if v claims more of this node's own log (its current origin's)
 * than it holds: a forgery, since nobody can hold our batches we did not
 * sign. (A node restored from a backup signs under a new origin: what its
 * peers hold beyond the backup is its old origin's, no longer its own.) */
static bool overclaims(jv_repl *r, const jv_vv *v)
{
    const jv_id *self = &r->node->origin.pk;
    if (jv_vv_get(v, self) <= jv_vv_get(&r->applied, self))
        return false;
    /* A commit whose completion has not reached the loop yet (a sync
     * reader may have sent its batch already): the writer says at once
     * what it committed. */
    return jv_vv_get(v, self) > r->host.own_committed(r->host.ctx);
}

/* -- what we have, what they lack ----------------------------------------- */

/* 1: pushed to p, 0: not, -1: as p's rank says. */
/* Makes a proven message's vector whole (vvlink.h) and keeps it for the
 * sender's next messages to be based on. False when its base is not kept
 * here: nothing is, then, and the sender is to send it whole. */
static bool take_vector(jv_repl *r, jv_msg *m)
{
    if (m->version == 2)
        return true;
    if (jv_vvlinks_took(r->links, &m->from, m->stamp, m->base, m->heard,
                        m->refs, m->nrefs, &m->have) == JV_OK)
        return true;
    jv_vvlinks_forget(r->links, &m->from);
    return false;
}

enum {
    LINK_LAZY = 1,
    LINK_EAGER = 2
};

/* -1: nothing learnt of origin's news on this link yet; else whether it is
 * pushed to p. */
static int link_get(const peer *p, const jv_id *origin)
{
    uint64_t v = jv_vv_get(&p->links, origin);
    return v ? v == LINK_EAGER : -1;
}

static void link_set(peer *p, const jv_id *origin, bool eager)
{
    /* Out of memory: it stays as its rank says (fewer or more bytes). */
    (void)jv_vv_set(&p->links, origin, eager ? LINK_EAGER : LINK_LAZY);
}

/* Whether what p last told us is older than an exchange timeout, the
 * least that facts are kept (known_age): too old to push by, it has had
 * news from others since. */
static bool knew_long_ago(const jv_repl *r, const peer *p)
{
    return now_ms(r) - p->last_contact_ms > r->o.timeout_ms;
}

/* Whether news of origin goes to p: the link says so, or p is one of the
 * first `fanout` and nothing was learnt of it yet. */
static bool link_pushes(const peer *p, int link)
{
    return link == 1 || (link == -1 && p->fanout_slot);
}

/* p's link for news of origin. A peer new to this origin's news that is
 * known to hold it all already got it from someone else first: its link
 * is made lazy as if a push had shown it (Plumtree's prune, learnt
 * without sending the batches twice). */
static int news_link(jv_repl *r, peer *p, const jv_id *origin)
{
    int l = link_get(p, origin);
    if (l == -1 && p->fanout_slot && p->have_known && !knew_long_ago(r, p) &&
        jv_vv_get(&p->have, origin) >= jv_vv_get(&r->applied, origin)) {
        link_set(p, origin, false);
        l = 0;
    }
    return l;
}

/* News of origin reached this node now: a batch of it applied (of a
 * reply too, whose origins kick is not told when there are many), or a
 * local commit. */
static void note_news(jv_repl *r, const jv_id *origin)
{
    uint64_t now = now_ms(r);
    (void)jv_vv_set(&r->news_ms, origin, now ? now : 1); /* 0: none */
}

/* How long ago news of origin reached this node (UINT64_MAX: never). */
static uint64_t news_age(const jv_repl *r, const jv_id *origin)
{
    uint64_t at = jv_vv_get(&r->news_ms, origin);
    return at ? now_ms(r) - at : UINT64_MAX;
}

/* How long news may take to reach a peer by its own tree before the tree
 * is taken to have failed it: a twentieth of the sync interval (50 ms by
 * default; a burst reaches most nodes within tens of milliseconds). */
#define REGRAFT_MS(r) ((r)->o.interval_ms / 20)
#define REGRAFT_LACK  4096

/* A push of news carries only the origins whose news goes to p (the
 * links, Plumtree's eager ones): the others are counted in `them` as
 * held, so that nothing of theirs is sent. p gets them from whoever
 * pushes them to it, or by its pulls. Without this, every push brought
 * p all it seemed to lack, which in a burst is mostly what others are
 * bringing it at the same moment.
 *
 * A link to a peer that holds an origin's fresh news already, which it
 * did not get from us (it came from elsewhere while our push waited for
 * the exchange before it), is made lazy, eager or not learnt yet: this
 * push would have brought it a second time, and so would the next news
 * of that origin. Plumtree prunes on the duplicate; this prunes without
 * sending it. Without this such links were never pruned (nothing of
 * theirs was sent, so no reply could show it held) and each cost a
 * duplicate in the next burst, whenever our copy happened to be first
 * on its way. An eager link is pruned only for news that reached us
 * within REGRAFT_MS: the peer then had it by its own tree. Older news it
 * may have pulled, and pruning on that broke its tree, so that later
 * news reached it by grafts and pulls (in a steady stream of writes on
 * 100 simulated nodes, a median lag of 150 ms instead of 110).
 *
 * On a link not learnt yet, another node's news goes on trial: only the
 * first batch p lacks of that origin (`trial`). The reply says whether p
 * had it already (prune) or not (eager: the rest goes in the next push,
 * a round trip later). A relay's links are all unlearnt in a cluster's
 * first burst, and each relay pushing its whole backlog on all of them
 * brought receivers batches they had (repl_bench, 16 nodes, first
 * burst: 0.09 to 0.43 duplicates per batch applied; 0.05 to 0.19 with
 * trials). Our own news goes whole: no one can have had it before us. */
static bool had_elsewhere(const jv_repl *r, const peer *p, const jv_vv *them,
                          const jv_vv_entry *e, int link)
{
    /* Fresh: within an exchange timeout, a peer that holds the news now
     * had it from someone else while it spread. */
    uint64_t fresh = r->o.timeout_ms;
    if (link != -1 && REGRAFT_MS(r) < fresh)
        fresh = REGRAFT_MS(r);
    return jv_vv_get(them, &e->id) >= e->seq && news_age(r, &e->id) < fresh &&
           jv_vv_get(&p->gave, &e->id) < e->seq;
}

static jv_err only_pushed(const jv_repl *r, peer *p, jv_vv *them, jv_vv *trial)
{
    jv_vv held;
    jv_err err = JV_OK;
    size_t k = 0;
    jv_vv_init(&held);
    const jv_vv *ln = &p->links;
    for (size_t i = 0; i < r->applied.n && !err; i++) {
        const jv_vv_entry *e = &r->applied.v[i];
        while (k < ln->n && jv_id_cmp(&ln->v[k].id, &e->id) < 0)
            k++;
        int l = k < ln->n && jv_id_eq(&ln->v[k].id, &e->id)
                    ? ln->v[k].seq == LINK_EAGER
                    : -1;
        if (link_pushes(p, l) && had_elsewhere(r, p, them, e, l)) {
            link_set(p, &e->id, false);
            l = 0;
        }
        if (!link_pushes(p, l))
            err = jv_vv_set(&held, &e->id, e->seq); /* appends: sorted */
        else if (l == -1 && !jv_id_eq(&e->id, &r->node->origin.pk))
            err = jv_vv_set(trial, &e->id, 1);
    }
    if (!err)
        err = jv_vv_merge(them, &held);
    jv_vv_fini(&held);
    return err;
}

/* After a reply: for each origin we pushed, did the peer hold it all
 * already (its vector is from before it applied our batches)? */
static void learn_pushes(peer *p, const jv_vv *theirs_before)
{
    for (size_t i = 0; i < p->sent.n; i++) {
        const jv_vv_entry *e = &p->sent.v[i];
        link_set(p, &e->id, jv_vv_get(theirs_before, &e->id) < e->seq);
    }
}

/* After p told us what it holds (a reply): an origin whose news we have
 * held for longer than REGRAFT_MS and p still lacks, on a link pruned
 * earlier, is pushed to p again from now on (Plumtree's graft when an
 * announced message does not come: here the reply is the announcement).
 * A link is pruned when the peer held what we pushed, which it may have
 * pulled just before (or had from a link pruned since): without this,
 * such a peer got that origin's news by its pulls alone, a period late.
 * True if a link was grafted: the push that follows carries it. */
static bool regraft(jv_repl *r, peer *p)
{
    uint64_t now = now_ms(r);
    bool any = false;
    /* One that lacks more is catching up, by its pulls: pushing it the
     * same backlog would bring it twice (see `repair`). */
    if (!r->o.fanout || jv_vv_missing(&p->have, &r->applied) > REGRAFT_LACK)
        return false;
    for (size_t i = 0; i < r->news_ms.n; i++) {
        const jv_vv_entry *e = &r->news_ms.v[i];
        if (now - e->seq < REGRAFT_MS(r) || link_get(p, &e->id) != 0 ||
            jv_vv_get(&p->have, &e->id) >= jv_vv_get(&r->applied, &e->id))
            continue;
        link_set(p, &e->id, true);
        any = true;
    }
    return any;
}

/* Ages the facts about p: kept for at least one exchange timeout, at
 * most two. Within that time a peer's vector only grows, so a lower one
 * is an older one: a request that waited for a connection or in a queue
 * while the peer told us more in its replies. After it, the facts are
 * forgotten, so that a peer restored from a backup, whose vector really
 * went back, is sent what it lost. */
static void known_age(peer *p, uint64_t now)
{
    uint64_t t = p->r->o.timeout_ms;
    if (now - p->known_since_ms < t)
        return;
    jv_vv tmp = p->known[1];
    p->known[1] = p->known[0];
    p->known[0] = tmp;
    jv_vv_clear(&p->known[0]);
    if (now - p->known_since_ms >= 2 * t)
        jv_vv_clear(&p->known[1]);
    p->known_since_ms = now;
}

/* A node's latest own vector, kept after its peer entry goes (a link
 * removed), for bundles made for it (--for). When every slot is taken,
 * the one told least recently is replaced. */
static void told_put(jv_repl *r, const jv_id *id, const jv_vv *claim)
{
    size_t at = 0;
    for (size_t i = 0; i < MAX_TOLD; i++) {
        const told *t = &r->told[i];
        if (!t->used || jv_id_eq(&t->id, id)) {
            at = i;
            break;
        }
        if (t->at_ms < r->told[at].at_ms)
            at = i;
    }
    told *t = &r->told[at];
    t->id = *id;
    t->at_ms = now_ms(r);
    /* Out of memory: rather nothing than half a vector. */
    t->used = jv_vv_copy(&t->vv, claim) == JV_OK;
}

bool jv_repl_said(const jv_repl *r, const jv_id *id, jv_vv *out)
{
    for (size_t i = 0; r && i < MAX_TOLD; i++)
        if (r->told[i].used && jv_id_eq(&r->told[i].id, id))
            return jv_vv_merge(out, &r->told[i].vv) == JV_OK;
    return false;
}

/* -- the stable frontier ------------------------------------------------- */

/* When id last proved what it holds (a signed message of its own); never
 * heard since this node started counts from the start. */
static const told *told_of(const jv_repl *r, const jv_id *id)
{
    for (size_t i = 0; i < MAX_TOLD; i++)
        if (r->told[i].used && jv_id_eq(&r->told[i].id, id))
            return &r->told[i];
    return NULL;
}

static bool behind_horizon(const jv_repl *r, const jv_id *id, uint64_t now)
{
    const told *t = told_of(r, id);
    uint64_t last = t && t->at_ms > r->started_ms ? t->at_ms : r->started_ms;
    return r->horizon_ms && now > last && now - last > r->horizon_ms;
}

typedef struct {
    jv_repl *r;
    jv_vv *out;
    uint64_t now;
    size_t counted, behind;
    bool unknown; /* a trusted node within the horizon has not spoken */
    jv_err err;
} frontier_ctx;

/* out = pointwise min(out, v). */
static jv_err vv_min(jv_vv *out, const jv_vv *v)
{
    jv_vv m;
    jv_err err = JV_OK;
    jv_vv_init(&m);
    for (size_t i = 0; !err && i < out->n; i++) {
        uint64_t a = out->v[i].seq, b = jv_vv_get(v, &out->v[i].id);
        if (a < b ? a : b)
            err = jv_vv_set(&m, &out->v[i].id, a < b ? a : b);
    }
    if (err) {
        jv_vv_fini(&m);
        return err;
    }
    jv_vv_fini(out);
    *out = m;
    return JV_OK;
}

static jv_err frontier_one(void *arg, const jv_trust_row *t)
{
    frontier_ctx *f = arg;
    jv_node *n = f->r->node;
    if (!t->trusted || jv_id_eq(&t->node, &n->kp.pk) ||
        jv_id_eq(&t->node, &n->origin.pk))
        return JV_OK;
    if (behind_horizon(f->r, &t->node, f->now)) {
        f->behind++;
        return JV_OK;
    }
    const told *said = told_of(f->r, &t->node);
    if (!said) {
        f->unknown = true;
        return JV_OK;
    }
    f->err = f->counted++ ? vv_min(f->out, &said->vv)
                          : jv_vv_copy(f->out, &said->vv);
    return f->err;
}

bool jv_repl_frontier(jv_repl *r, uint64_t horizon_ms, jv_vv *out,
                      size_t *behind)
{
    frontier_ctx f = {r, out, now_ms(r), 0, 0, false, JV_OK};
    r->horizon_ms = horizon_ms;
    jv_vv_clear(out);
    jv_err err = jv_trustview_each(r->node->trust, frontier_one, &f);
    if (behind)
        *behind = f.behind;
    /* No trusted peer within the horizon has acknowledged anything: this
     * node's own batches, at least, are held by nobody else. */
    return !err && !f.err && !f.unknown && f.counted > 0;
}

/* A peer entry behind the horizon: its node silent for longer (a node
 * never reached has been silent since this node started). */
static bool peer_behind(const peer *p, uint64_t now)
{
    const jv_repl *r = p->r;
    if (p->is_self)
        return false;
    if (p->id_known)
        return behind_horizon(r, &p->id, now);
    return !p->reachable && r->horizon_ms && now > r->started_ms &&
           now - r->started_ms > r->horizon_ms;
}

size_t jv_repl_behind_horizon(const jv_repl *r)
{
    size_t n = 0;
    uint64_t now = now_ms(r);
    for (const peer *p = r->peers; p; p = p->next)
        n += peer_behind(p, now);
    return n;
}

/* p's own message says it holds `claim`. */
static void learn(peer *p, const jv_vv *claim)
{
    known_age(p, now_ms(p->r));
    jv_vv_merge(&p->known[0], claim);
    if (p->id_known)
        told_put(p->r, &p->id, claim);
}

/* What to select against for p: base (its request's vector, or what we
 * believe it holds) raised by the facts it gave us recently. Without
 * this, a stale request would be answered with batches the peer sent us
 * itself since it made the request: echoes, and wasted bytes. */
static jv_err theirs(peer *p, const jv_vv *base, jv_vv *out)
{
    jv_err err;
    known_age(p, now_ms(p->r));
    if ((err = jv_vv_copy(out, base)) ||
        (err = jv_vv_merge(out, &p->known[0])) ||
        (err = jv_vv_merge(out, &p->known[1])))
        return err;
    return JV_OK;
}

/* A request of p's stamped `stamp`: if p made it before its latest reply
 * to a request of ours that carried batches, it may not show them yet;
 * count them as had (no echo). A newer one shows what p holds, having
 * applied or held aside what we sent, or refused it: what it lacks is
 * sent again, so that a refused batch never counts as delivered. */
static jv_err delivered_for(peer *p, uint64_t stamp, jv_vv *them)
{
    if (stamp < p->delivered_stamp &&
        now_ms(p->r) - p->delivered_ms < 2 * p->r->o.timeout_ms)
        return jv_vv_merge(them, &p->delivered);
    jv_vv_clear(&p->delivered);
    p->delivered_stamp = 0;
    return JV_OK;
}

static jv_err add_held(void *arg, const jv_held_row *h)
{
    jv_vv *have = arg;
    /* Held batches that continue the applied log count as had: peers need
     * not send them again (they wait for trust, not for data). */
    if (h->first_seq == jv_vv_get(have, &h->origin) + 1)
        return jv_vv_set(have, &h->origin, h->last_seq);
    return JV_OK;
}

/* applied and what is held aside after it, read on st. */
static jv_err have_on(jv_store *st, const jv_vv *applied, jv_vv *out)
{
    jv_err err = jv_vv_copy(out, applied);
    if (err)
        return err;
    return jv_store_held_list(st, add_held, out);
}

typedef struct {
    jv_buf data; /* body || sig of each batch */
    size_t *off;
    size_t *len;
    size_t n, cap;
    size_t bytes, budget;
    uint64_t last_seq;
    uint64_t upto; /* the origin's seq in the message's vector */
} selection;

static void sel_fini(selection *s)
{
    jv_buf_fini(&s->data);
    jv_free(s->off);
    jv_free(s->len);
}

static jv_err sel_add(void *arg, const jv_log_row *row)
{
    selection *s = arg;
    /* Committed since the vector the message carries was taken (storage
     * reads the log as it is now): left for a later message, so that a
     * message never carries a batch its own vector does not count. A
     * peer believes the vector, not the batches: it would count them as
     * lacking there and send them back. */
    if (row->last_seq > s->upto)
        return JV_OK;
    /* Storage hands over an origin's first batch even past the budget; a
     * message already holding batches must not grow beyond it, or it could
     * pass max_message. A lone batch always fits (max_message is at least
     * twice the largest batch, and the budget half of it). */
    if (s->n > 0 && s->bytes + jv_wire_batch_cost(row->len) > s->budget)
        return JV_ETOOBIG;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *off = jv_reallocarray(s->off, cap, sizeof(size_t));
        if (!off)
            return JV_ENOMEM;
        s->off = off;
        size_t *len = jv_reallocarray(s->len, cap, sizeof(size_t));
        if (!len)
            return JV_ENOMEM;
        s->len = len;
        s->cap = cap;
    }
    s->off[s->n] = s->data.len;
    s->len[s->n] = row->len;
    jv_buf_append(&s->data, row->body, row->len);
    jv_buf_append(&s->data, row->sig, JV_SIG_LEN);
    if (jv_buf_err(&s->data))
        return JV_ENOMEM;
    s->n++;
    s->bytes += jv_wire_batch_cost(row->len);
    s->last_seq = row->last_seq;
    return JV_OK;
}

/* The batches a peer with vector `theirs` lacks, within budget bytes,
 * read on st from the origins of `applied` and no further than it says
 * (st may hold more by now: see sel_add), beginning with the start-th
 * (random, so that a budget too small for everything does not always
 * serve the same origins first). *more: something was left out. sent (if
 * not NULL) records what went. Any thread owning st. */
static jv_err select_on(jv_store *st, const jv_vv *applied, size_t start,
                        const jv_vv *theirs, const jv_vv *trial, size_t budget,
                        selection *s, bool *more, jv_vv *sent)
{
    *more = false;
    s->budget = budget;
    for (size_t k = 0; k < applied->n; k++) {
        const jv_vv_entry *e = &applied->v[(start + k) % applied->n];
        uint64_t have = jv_vv_get(theirs, &e->id);
        if (e->seq <= have)
            continue;
        if (s->bytes >= budget) {
            *more = true;
            break;
        }
        s->last_seq = have;
        s->upto = e->seq;
        size_t most = jv_vv_get(trial, &e->id) ? 1 : LOG_BATCHES;
        jv_err err = jv_store_log_after(st, &e->id, have, most,
                                        budget - s->bytes, sel_add, s);
        if (err == JV_ETOOBIG) {
            /* Full (sel_add): what it held back goes in the next exchange. */
            if (s->last_seq > have && sent)
                jv_vv_raise(sent, &e->id, s->last_seq);
            *more = true;
            break;
        }
        if (err)
            return err;
        if (s->last_seq > have && sent)
            jv_vv_raise(sent, &e->id, s->last_seq);
        if (s->last_seq < e->seq)
            *more = true;
    }
    return JV_OK;
}

static size_t select_start(jv_repl *r)
{
    return r->applied.n ? (size_t)(rnd(r) % r->applied.n) : 0;
}

/* Who a message goes to and what it answers. */
typedef struct {
    jv_msg_type type;
    const jv_id *to; /* NULL: not known (zeros on the wire) */
    uint64_t echo;   /* reply: the request's stamp */
    jv_refusal refused;
    const jv_wire_snap *snap; /* types 3 and 4 */
    unsigned version;         /* 2 for a node that speaks only that */
    /* The vector may go as its difference from base_vv, that of our
     * message stamped `base` (vvlink.h); heard: the newest of `to`'s. */
    uint64_t base, heard;
    const jv_vv *base_vv;
} head;

/* What building a message needs of the node, copied so that a sync reader
 * thread can build one while the loop goes on. */
typedef struct {
    const jv_keypair *kp; /* the node's: never changes while it runs */
    jv_keyring ring;
    bool keyed;
    char bound[256];
} build_env;

static void env_init(jv_repl *r, build_env *env)
{
    memset(env, 0, sizeof(*env));
    env->kp = &r->node->kp;
    env->keyed = r->keyed;
    if (r->keyed)
        env->ring = r->ring;
    snprintf(env->bound, sizeof(env->bound), "%s", r->bound);
}

/* Encodes, signs, compresses and seals a message carrying the selection,
 * stamped `stamp`, and `have` whole or as its difference from h's base
 * when that is shorter. *plain: what the frame would weigh without zstd.
 * Any thread. */
static jv_err build_with(const build_env *env, const head *h, uint64_t stamp,
                         const jv_vv *have, selection *s, bool more,
                         uint64_t budget, jv_buf *frame, size_t *plain_out)
{
    jv_msg m;
    jv_buf raw;
    jv_vv diff;
    jv_vv_ref *refs = NULL;
    size_t plain = 0;
    jv_err err;
    jv_msg_init(&m);
    jv_buf_init(&raw);
    jv_vv_init(&diff);
    m.type = h->type;
    m.from = env->kp->pk;
    if (h->to)
        m.to = *h->to;
    m.stamp = stamp;
    m.echo = h->echo;
    m.refused = h->refused;
    m.from_addr = jv_str_c(env->bound);
    m.version = h->version;
    m.heard = h->heard;
    m.have = *have; /* borrowed */
    if (h->base && h->base_vv) {
        jv_err d =
            h->version && h->version < 4
                ? jv_vv_diff(have, h->base_vv, &diff)
                : jv_vv_diff_refs(have, h->base_vv, &refs, &m.nrefs, &diff);
        /* Sent whole when that is no shorter, as a first message is. By
         * bytes: a place costs a few, an entry by id about 37, so that a
         * vector whose every entry moved since the base goes as places. */
        if (d == JV_OK && jv_wire_have_cost(h->version, refs, m.nrefs, &diff) <
                              jv_wire_have_cost(h->version, NULL, 0, have)) {
            m.have = diff;
            m.refs = refs;
            m.base = h->base;
        } else {
            m.nrefs = 0;
        }
    }
    m.more = more;
    m.budget = budget;
    if (h->snap)
        m.snap = *h->snap;
    jv_wire_batch *wb = s && s->n ? jv_calloc(s->n, sizeof(*wb)) : NULL;
    if (s && s->n && !wb) {
        err = JV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; s && i < s->n; i++) {
        wb[i].body = s->data.data + s->off[i];
        wb[i].len = s->len[i];
        wb[i].sig = s->data.data + s->off[i] + s->len[i];
    }
    m.batches = wb;
    m.nbatches = s ? s->n : 0;
    if ((err = jv_msg_encode(&m, env->kp, COMPRESS_MIN, &raw, &plain)))
        goto out;
    err = jv_seal(env->keyed ? &env->ring : NULL, raw.data, raw.len, frame);
    /* What the frame would weigh without zstd (format byte + plain body +
     * sealing): the protocol's own overhead, which compression can hide. */
    if (!err)
        *plain_out = frame->len - raw.len + 1 + plain;
out:
    jv_free(wb);
    jv_free(refs);
    jv_vv_fini(&diff);
    jv_buf_fini(&raw);
    return err;
}

/* build_with on the loop, with the node's next stamp. *stamp (may be NULL)
 * receives the message's stamp. */
static jv_err build(jv_repl *r, const head *h, const jv_vv *have, selection *s,
                    bool more, uint64_t budget, jv_buf *frame, uint64_t *stamp)
{
    build_env env;
    size_t plain = 0;
    uint64_t st = next_stamp(r);
    env_init(r, &env);
    if (stamp)
        *stamp = st;
    jv_err err = build_with(&env, h, st, have, s, more, budget, frame, &plain);
    if (!err)
        count(r, "jarvis_repl_bytes_uncompressed_total", "direction", "out",
              (double)plain);
    jv_keyring_wipe(&env.ring);
    return err;
}

/* Fills in h the protocol version of a message to id and what its vector
 * is based on (vvlink.h), copied into base; base NULL: the vector goes
 * whole, only `heard` is told. Nothing of this to a node of version 2. */
static jv_err link_head(jv_repl *r, const jv_id *id, unsigned version, head *h,
                        jv_vv *base)
{
    uint64_t stamp = 0;
    h->version = version;
    if (version == 2)
        return JV_OK;
    jv_err err = jv_vvlinks_base(r->links, id, &stamp, base, &h->heard);
    if (!err && stamp) {
        h->base = stamp;
        h->base_vv = base;
    }
    return err;
}

/* The version to speak to p: an older one it is known to speak (a
 * cluster being upgraded), else 0, ours. */
static unsigned older(const peer *p)
{
    return p->version >= JV_WIRE_VERSION_MIN && p->version < JV_WIRE_VERSION
               ? p->version
               : 0;
}

/* -- applying what peers send --------------------------------------------- */

static void job_free(apply_job *j)
{
    jv_free(j->src_addr);
    jv_free(j->rb);
    jv_free(j->hlc);
    jv_free(j->data);
    jv_free(j);
}

static void kick(jv_repl *r, const char *exclude_addr, const jv_id *exclude,
                 const jv_id *origins, size_t norigins);

static void continue_exchange(jv_repl *r, const char *addr, bool more)
{
    peer *p = addr ? find_addr(r, addr) : NULL;
    if (!p || p->state != P_APPLYING)
        return;
    p->state = P_IDLE;
    /* Nothing more to pull, and it holds nothing of the origin we were
     * restored from that we lack: what a restored node's health waits for.
     * The second condition matters because a peer may leave out what it
     * believes we hold. */
    if (!more &&
        p->claim_self <= jv_vv_get(&r->applied, &r->node->restored_from))
        p->caught_up = true;
    if (r->stopping)
        return;
    bool was_pull = p->pulling;
    if (r->chain == p && !(was_pull && more))
        r->chain = NULL;
    /* A pull that left something out goes on, from one peer at a time:
     * pulling the same missing range from several at once would bring
     * it several times. (A push asked for no batches back: what the peer
     * has more is most likely on its way to us already, and anti-entropy
     * pulls it otherwise.) */
    if (was_pull && more && (!r->chain || r->chain == p)) {
        r->chain = p;
        exchange(p, true);
        return;
    }
    /* A pull's reply says exactly what p holds: push what it lacks (if
     * one message carries it: see `repair`). */
    bool lacks = false;
    if (was_pull) {
        jv_vv them;
        jv_vv_init(&them);
        lacks = theirs(p, &p->have, &them) == JV_OK &&
                jv_vv_missing(&them, &r->applied) > 0;
        jv_vv_fini(&them);
    }
    if (p->again || lacks) {
        bool pull = p->again_pull;
        p->repair = was_pull && !pull;
        p->again = p->again_pull = false;
        exchange(p, pull);
        p->repair = false;
    }
}

static void maybe_finish_stop(jv_repl *r);

/* Origins of the batches applied, for the relay's per-origin links; more
 * than 16 at once: no filter at all (n set past the end). */
typedef struct {
    jv_id id[16];
    size_t n;
} origin_set;

static void origin_add(origin_set *o, const jv_id *origin)
{
    size_t k = 0;
    if (o->n > 16)
        return;
    while (k < o->n && !jv_id_eq(&o->id[k], origin))
        k++;
    if (k == o->n && o->n < 16)
        o->id[o->n++] = *origin;
    else if (k == o->n)
        o->n = 17;
}

/* Counts (and logs, once per peer and reason) one batch's result other
 * than applied. */
static void count_result(jv_repl *r, peer *src, const jv_id *src_id, jv_err res,
                         const jv_id *origin)
{
    switch (res) {
    case JV_EDUP:
        count(r, "jarvis_repl_batches_total", "result", "duplicate", 1);
        break;
    case JV_EGAP:
        count(r, "jarvis_repl_batches_total", "result", "held_gap", 1);
        break;
    case JV_EUNTRUSTED:
        refuse(r, src, src_id, RS_UNTRUSTED, origin, 1);
        break;
    case JV_ESKEW:
        refuse(r, src, src_id, RS_SKEW, origin, 1);
        break;
    case JV_ESIG:
        refuse(r, src, src_id, RS_SIGNATURE, origin, 1);
        break;
    case JV_ELINK:
        refuse(r, src, src_id, RS_LINK, origin, 1);
        break;
    case JV_EEQUIVOCATE:
        refuse(r, src, src_id, RS_EQUIVOCATION, origin, 1);
        break;
    case JV_ETOOBIG:
        refuse(r, src, src_id, RS_HELD_FULL, origin, 1);
        break;
    default:
        refuse(r, src, src_id, RS_MALFORMED, origin, 1);
        break;
    }
}

/* A batch stamped ahead of this clock (within the skew bound) took 0. */
static void note_delay(jv_repl *r, uint64_t stamp)
{
    uint64_t now = now_ms(r), at = jv_hlc_ms(stamp);
    uint64_t ms = now > at ? now - at : 0;
    r->delay_ms[r->ndelay++ % JV_REPL_DELAY_SAMPLES] = ms;
    jv_metrics_observe(r->node->metrics, "jarvis_repl_delay_seconds", NULL,
                       (double)ms / 1000.0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void jv_repl_delay_get(const jv_repl *r, jv_repl_delay *out)
{
    uint64_t v[JV_REPL_DELAY_SAMPLES];
    memset(out, 0, sizeof(*out));
    if (!r || r->ndelay == 0)
        return;
    size_t n =
        r->ndelay < JV_REPL_DELAY_SAMPLES ? r->ndelay : JV_REPL_DELAY_SAMPLES;
    memcpy(v, r->delay_ms, n * sizeof(v[0]));
    qsort(v, n, sizeof(v[0]), cmp_u64);
    out->samples = n;
    out->p50_ms = v[(n - 1) / 2];
    out->p99_ms = v[(n * 99 - 1) / 100];
    out->max_ms = v[n - 1];
}

static void applied_cb(jv_write_req *w)
{
    apply_job *j = w->arg;
    jv_repl *r = j->r;
    peer *src =
        j->src_addr ? find_addr(r, j->src_addr) : find_id(r, &j->src_id);
    size_t applied = 0;
    origin_set origins = {.n = 0};
    r->applying--;
    if (j->recheck)
        r->rechecking = false;
    else if (!--r->pending_jobs)
        jv_vv_clear(&r->pending); /* what failed is not held after all */
    if (w->err) {
        jv_error("repl", "applying %zu batches failed: %s", j->n,
                 jv_strerror(w->err));
        count(r, "jarvis_repl_batches_total", "result", "storage_error",
              (double)j->n);
        goto done;
    }
    for (size_t i = 0; i < j->n; i++) {
        jv_batch_head h;
        jv_batch_peek(j->rb[i].body, j->rb[i].len, &h);
        if (j->rb[i].result != JV_OK) {
            count_result(r, src, &j->src_id, j->rb[i].result, &h.origin);
            continue;
        }
        applied++;
        note_delay(r, j->hlc[i]);
        jv_hlc_observe(&r->node->hlc, now_ms(r), j->hlc[i]);
        origin_add(&origins, &h.origin);
        note_news(r, &h.origin);
    }
    if (applied || w->stats.released) {
        count(r, "jarvis_repl_batches_total", "result", "applied",
              (double)applied);
        /* r->applied is the whole job's vector already
         * (jv_repl_committed). */
        if (src)
            src->batches_in += applied;
        /* Relay: others may not have these yet. Released batches (their
         * origins unknown here) are news for every peer. */
        if (!r->stopping)
            kick(r, j->src_addr, &j->src_id, origins.id,
                 w->stats.released || origins.n > 16 ? 0 : origins.n);
    }
done:
    if (j->from_reply)
        continue_exchange(r, j->src_addr, j->more);
    job_free(j);
    maybe_finish_stop(r);
}

/* Marks in ok[] the message's batches worth the writer's time: not
 * malformed, not applied already. (One stamped beyond the clock-skew
 * bound goes on too: the store holds it aside until it is within.)
 * Returns how many, and their bytes in *bytes. */
static size_t filter_batches(jv_repl *r, peer *src, const jv_msg *m, bool *ok,
                             size_t *bytes)
{
    size_t keep = 0;
    *bytes = 0;
    for (size_t i = 0; i < m->nbatches; i++) {
        jv_batch_head h;
        if (jv_batch_peek(m->batches[i].body, m->batches[i].len, &h)) {
            refuse(r, src, &m->from, RS_MALFORMED, NULL, 1);
            continue;
        }
        if (h.last_seq <= jv_vv_get(&r->applied, &h.origin) ||
            h.last_seq <= jv_vv_get(&r->pending, &h.origin)) {
            count(r, "jarvis_repl_batches_total", "result", "duplicate", 1);
            continue;
        }
        ok[i] = true;
        keep++;
        *bytes += m->batches[i].len;
    }
    return keep;
}

/* A job holding copies of the batches marked in ok[] (keep of them, bytes
 * long), or NULL when out of memory. */
static apply_job *job_new(jv_repl *r, peer *src, const jv_msg *m,
                          const bool *ok, size_t keep, size_t bytes)
{
    apply_job *j = jv_calloc(1, sizeof(*j));
    if (j) {
        j->rb = jv_calloc(keep, sizeof(*j->rb));
        j->hlc = jv_calloc(keep, sizeof(*j->hlc));
        j->data = jv_malloc(bytes ? bytes : 1);
        j->src_addr = src ? jv_strndup(src->addr, strlen(src->addr)) : NULL;
    }
    if (!j || !j->rb || !j->hlc || !j->data || (src && !j->src_addr)) {
        if (j)
            job_free(j);
        return NULL;
    }
    j->r = r;
    j->src_id = m->from;
    j->more = m->more;
    size_t at = 0;
    for (size_t i = 0; i < m->nbatches; i++) {
        if (!ok[i])
            continue;
        jv_batch_head h;
        jv_batch_peek(m->batches[i].body, m->batches[i].len, &h);
        memcpy(j->data + at, m->batches[i].body, m->batches[i].len);
        j->rb[j->n].body = j->data + at;
        j->rb[j->n].len = m->batches[i].len;
        memcpy(j->rb[j->n].sig, m->batches[i].sig, JV_SIG_LEN);
        j->hlc[j->n] = h.hlc;
        j->n++;
        at += m->batches[i].len;
    }
    return j;
}

/* Filters the message's batches and hands the rest to the writer.
 * Returns true if a job was submitted (its callback continues). */
static bool apply_batches(jv_repl *r, peer *src, const jv_msg *m,
                          bool from_reply)
{
    size_t keep, bytes;
    apply_job *j = NULL;
    bool *ok = m->nbatches ? jv_calloc(m->nbatches, sizeof(bool)) : NULL;
    if (m->nbatches && !ok)
        return false;
    keep = filter_batches(r, src, m, ok, &bytes);
    if (keep && !(j = job_new(r, src, m, ok, keep, bytes)))
        jv_error("repl", "out of memory: %zu batches dropped", keep);
    jv_free(ok);
    if (!j)
        return false;
    j->from_reply = from_reply;
    j->wr.remote = j->rb;
    j->wr.nremote = j->n;
    j->wr.apply_flags = JV_APPLY_REQUIRE_TRUST;
    j->wr.done = applied_cb;
    j->wr.arg = j;
    for (size_t i = 0; i < j->n; i++) {
        jv_batch_head h;
        if (!jv_batch_peek(j->rb[i].body, j->rb[i].len, &h))
            (void)jv_vv_raise(&r->pending, &h.origin, h.last_seq);
    }
    r->pending_jobs++;
    r->applying++;
    r->host.write(r->host.ctx, &j->wr);
    return true;
}

/* -- outbound exchanges --------------------------------------------------- */

/* The exchange with p failed (outcome "failed"), or the peer refused it
 * ("refused"): backoff, and why in p's last_error. */
static void fail_as(peer *p, const char *why, const char *outcome)
{
    jv_repl *r = p->r;
    uint64_t now = now_ms(r);
    /* With no connection, that is the reason, logged by on_link: a
     * request that then times out or is lost adds nothing. */
    bool net = p->trouble == T_NET;
    p->state = P_IDLE;
    p->again = p->again_pull = false;
    if (r->chain == p)
        r->chain = NULL;
    if (!net && why && (p->reachable || p->failures == 0))
        jv_warn("repl", "peer %s unreachable: %s", p->addr, why);
    if (p->reachable || !p->down_since_ms)
        p->down_since_ms = now;
    if (p->reachable)
        r->host.peer_seen(r->host.ctx, p->addr, p->id_known ? &p->id : NULL,
                          false);
    p->reachable = false;
    p->failures++;
    if (!net)
        snprintf(p->last_error, sizeof(p->last_error), "%s",
                 why ? why : "connection lost");
    /* Exponential backoff with jitter in [50%, 100%] of the step. */
    uint64_t step = r->o.backoff_min_ms;
    for (unsigned i = 1; i < p->failures && step < r->o.backoff_max_ms; i++)
        step *= 2;
    if (step > r->o.backoff_max_ms)
        step = r->o.backoff_max_ms;
    p->next_try_ms = now + step / 2 + rnd(r) % (step / 2 + 1);
    count(r, "jarvis_repl_exchanges_total", "outcome", outcome, 1);
}

static void fail(peer *p, const char *why)
{
    fail_as(p, why, "failed");
}

/* Building one message off the loop (ex_job: a request of ours,
 * serve_job: an answer): copies of what it needs of the loop, taken there,
 * then what the sync reader thread makes of them. */
typedef struct {
    jv_read_job job;
    jv_repl *r;
    head h;
    build_env env;
    jv_vv applied, them, have;
    jv_vv trial;   /* origins of which only the first batch goes */
    jv_vv base;    /* h.base_vv */
    jv_vv pending; /* r->pending: counted in `have` */
    size_t start;
    uint64_t budget, stamp;
    selection s;
    bool more;
    jv_buf frame;
    size_t plain;
} msg_work;

static void work_init(msg_work *w, jv_repl *r)
{
    w->r = r;
    jv_vv_init(&w->applied);
    jv_vv_init(&w->them);
    jv_vv_init(&w->trial);
    jv_vv_init(&w->have);
    jv_vv_init(&w->base);
    jv_vv_init(&w->pending);
    jv_buf_init(&w->frame);
    jv_buf_init(&w->s.data);
}

static void work_fini(msg_work *w)
{
    jv_keyring_wipe(&w->env.ring);
    jv_vv_fini(&w->applied);
    jv_vv_fini(&w->them);
    jv_vv_fini(&w->trial);
    jv_vv_fini(&w->have);
    jv_vv_fini(&w->base);
    jv_vv_fini(&w->pending);
    sel_fini(&w->s);
    jv_buf_fini(&w->frame);
}

/* An exchange's request, built on the sync reader thread as an answer is
 * (serve_job): our vector, what p lacks for a push. p is NULL once the
 * peer has been freed meanwhile. */
typedef struct ex_job {
    msg_work w; /* first: the read job's arg is the ex_job */
    peer *p;
    jv_id to;
    jv_vv sent;
    bool probe, select, pull, repair;
    bool snap; /* a SNAP request: ws says which chunk (snap_send) */
    jv_wire_snap ws;
} ex_job;

static void ex_free(ex_job *j)
{
    work_fini(&j->w);
    jv_vv_fini(&j->sent);
    jv_free(j);
}

/* Sync reader thread. */
static jv_err ex_run(jv_store *st, void *arg)
{
    ex_job *j = arg;
    jv_err err;
    if (!j->probe && ((err = have_on(st, &j->w.applied, &j->w.have)) ||
                      (err = jv_vv_merge(&j->w.have, &j->w.pending))))
        return err;
    if (j->select &&
        (err = select_on(st, &j->w.applied, j->w.start, &j->w.them, &j->w.trial,
                         j->w.budget, &j->w.s, &j->w.more, &j->sent)))
        return err;
    return build_with(&j->w.env, &j->w.h, j->w.stamp, &j->w.have, &j->w.s,
                      j->w.more, j->pull && !j->probe ? j->w.budget : 0,
                      &j->w.frame, &j->w.plain);
}

static bool snap_unsent(jv_repl *r, peer *p, const struct ex_job *j,
                        bool built);

/* Loop thread: the request is built; send it. */
static void ex_done(void *arg, jv_err err, const char *msg)
{
    ex_job *j = arg;
    jv_repl *r = j->w.r;
    peer *p = j->p;
    r->serving--;
    if (!p || r->stopping)
        goto out;
    p->building = NULL;
    if (p->state != P_BUILDING)
        goto out; /* mark_self, say: nothing to send */
    if (!err && j->repair && j->w.more) {
        p->state = P_IDLE; /* see `repair`: it is catching up elsewhere */
        goto out;
    }
    bool built = !err;
    if (built)
        err = r->host.tp_send(p->tp, j->w.frame.data, j->w.frame.len,
                              r->o.timeout_ms);
    if (err) {
        char why[160];
        snprintf(why, sizeof(why), "cannot send: %s%s%s", jv_strerror(err),
                 msg[0] ? ": " : "", msg);
        /* A SNAP request that could not be built: as before it went
         * off the loop, the transfer starts over and the peer is not to
         * blame. */
        if (j->snap && snap_unsent(r, p, j, built)) {
            jv_warn("repl", "peer %s: %s", p->addr, why);
            goto out;
        }
        fail(p, why);
        goto out;
    }
    count(r, "jarvis_repl_bytes_uncompressed_total", "direction", "out",
          (double)j->w.plain);
    /* A SNAP request's vector goes whole and is no base (as a probe's). */
    if (!j->probe && !j->snap && j->w.h.version != 2)
        (void)jv_vvlinks_sent(r->links, &j->to, j->w.stamp, &j->w.have);
    jv_vv_clear(&p->sent);
    jv_vv_merge(&p->sent, &j->sent);
    (void)jv_vv_merge(&p->gave, &j->sent); /* out of memory: prunes more */
    p->state = P_SENDING;
    p->req_stamp = j->w.stamp;
    p->pulling = j->pull;
    p->pull_ms =
        j->pull && !j->probe ? now_ms(r) : 0; /* a probe asks nothing */
    p->probing = j->probe;
    p->bytes_out += j->w.frame.len;
    p->batches_out += j->w.s.n;
    count(r, "jarvis_repl_bytes_total", "direction", "out",
          (double)j->w.frame.len);
    /* What is left over goes in the next exchange, after the reply. */
    if (j->w.more)
        p->again = true;
out:
    ex_free(j);
    maybe_finish_stop(r);
}

/* Hands j, a request to p, to the sync reader; p is P_BUILDING until it
 * is sent (ex_done). */
static jv_err ex_submit(jv_repl *r, peer *p, ex_job *j)
{
    j->w.start = select_start(r);
    j->w.stamp = next_stamp(r);
    env_init(r, &j->w.env);
    j->w.job.fn = ex_run;
    j->w.job.done = ex_done;
    j->w.job.arg = j;
    jv_err err = r->host.read(r->host.ctx, &j->w.job);
    if (err)
        return err;
    r->serving++;
    p->state = P_BUILDING;
    p->building = j;
    return JV_OK;
}

/* One exchange with p. A push (news to spread) carries what p lacks as
 * far as we know and asks for no batches back, only p's vector: what p
 * has that we lack is most likely reaching us from elsewhere already. A
 * pull (anti-entropy, start-up, catching up) carries only our vector and
 * lets the reply bring what we lack, up to half of max_message; once the
 * reply has told us exactly what p holds, what p lacks is pushed
 * (continue_exchange). Pulls send nothing on a guess: what we knew of p
 * may be long out of date, and would bring it batches it holds.
 *
 * A peer whose id is not known yet, or not trusted, gets a probe instead:
 * addressed to no one, with an empty vector and nothing else. Its reply
 * names (and proves) the node at that address and says nothing more; a
 * trusted one is then pulled from at once (take_introduction). Nothing of
 * ours goes to a node we do not trust.
 *
 * The request is built off the loop (ex_run); the peer is P_BUILDING
 * meanwhile, which holds further exchanges back as P_SENDING does. */
static void exchange(peer *p, bool pull)
{
    jv_repl *r = p->r;
    jv_err err = JV_ENOMEM;

    if (r->stopping || p->is_self)
        return;
    if (p->state != P_IDLE) {
        p->again = true;
        p->again_pull |= pull;
        return;
    }
    if (is_blocked(r, p->addr, p->id_known ? &p->id : NULL)) {
        fail(p, "blocked by a test fault");
        return;
    }
    ex_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        goto fail;
    work_init(&j->w, r);
    j->p = p;
    jv_vv_init(&j->sent);
    j->w.budget = r->o.max_message / 2;
    j->pull = pull;
    j->repair = p->repair;
    j->probe = !p->id_known || !is_trusted(r, &p->id);
    j->to = p->id;
    j->w.h = (head){.type = JV_MSG_SYNC,
                    .to = j->probe ? NULL : &j->to,
                    .echo = 0,
                    .refused = JV_REFUSED_NONE,
                    .snap = NULL};
    j->select = !j->probe && !pull && p->have_known;
    if (j->select && knew_long_ago(r, p)) {
        /* What we knew of p is old: this push asks its vector only, and
         * the push that follows its reply brings what it lacks. */
        j->select = false;
        p->again = true;
    }
    unsigned version = older(p);
    if ((err = jv_vv_copy(&j->w.applied, &r->applied)) ||
        (err = jv_vv_copy(&j->w.pending, &r->pending)) ||
        (j->select && (err = theirs(p, &p->have, &j->w.them))) ||
        (j->select && !p->repair &&
         (err = only_pushed(r, p, &j->w.them, &j->w.trial))))
        goto fail;
    if (j->probe)
        j->w.h.version = version;
    else if ((err = link_head(r, &p->id, version, &j->w.h, &j->w.base)))
        goto fail;
    if ((err = ex_submit(r, p, j)))
        goto fail;
    return;
fail:
    if (j)
        ex_free(j);
    char why[96];
    snprintf(why, sizeof(why), "cannot send: %s", jv_strerror(err));
    fail(p, why);
}

/* p cannot be talked to for reason t: the exchange fails with `why` as
 * its state, logged whenever the reason changes. */
static void troubled(peer *p, trouble t, const char *why)
{
    if (p->trouble != t)
        jv_warn("repl", "peer %s: %s", p->addr, why);
    p->trouble = t;
    if (t == T_VERSION)
        p->version = p->r->peer_version;
    fail_as(p, why, "refused");
}

static const char *version_text(unsigned v, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "incompatible version %u: it speaks protocol version %u, this "
             "node %d",
             v, v, JV_WIRE_VERSION);
    return out;
}

/* Its reply is sealed under a key this node does not hold (or it sent
 * plaintext, or sealed while we have no key). */
static const char *unknown_key_text(jv_repl *r, char *out, size_t outlen)
{
    char keys[128];
    jv_keyring_describe(r->keyed ? &r->ring : NULL, keys, sizeof(keys));
    snprintf(out, outlen,
             "key mismatch: it sends under %s, which this node lacks "
             "(here: %.100s)",
             r->frame_key[0] ? r->frame_key : "no key", keys);
    return out;
}

/* A notice in answer to our request (keyring.h): the peer could not open
 * it, or speaks another version. Unproven, so it changes only what is
 * shown: the peer's state and the log. */
static bool take_notice(jv_repl *r, peer *p, const uint8_t *msg, size_t len)
{
    jv_notice nt;
    char why[160], ours[9] = "", list[8 * 10 + 1] = "";
    jv_err err = jv_notice_parse(msg, len, &nt);
    if (err == JV_ENOTFOUND)
        return false;
    if (err) {
        fail(p, "bad reply: a malformed notice");
        return true;
    }
    if (nt.kind == JV_NOTICE_VERSION && nt.version >= JV_WIRE_VERSION_MIN &&
        nt.version < JV_WIRE_VERSION && p->version != nt.version) {
        /* An older node we can still talk with (a cluster being
         * upgraded): in its version, at once. */
        jv_info("repl",
                "peer %s speaks protocol version %u: talking that "
                "to it",
                p->addr, nt.version);
        p->version = nt.version;
        p->state = P_IDLE;
        exchange(p, p->pulling);
        return true;
    }
    if (nt.kind == JV_NOTICE_VERSION) {
        r->peer_version = nt.version;
        troubled(p, T_VERSION, version_text(nt.version, why, sizeof(why)));
        return true;
    }
    if (r->keyed)
        jv_keyring_id_hex(&r->ring, 0, ours);
    for (size_t i = 0, at = 0; i < nt.nids; i++)
        at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s",
                               i ? " " : "", nt.ids[i]);
    snprintf(why, sizeof(why),
             "key mismatch: it does not accept our key %s (it accepts %s)",
             ours[0] ? ours : "(none: plaintext)",
             nt.nids ? list : "no key: plaintext only");
    troubled(p, T_KEY, why);
    return true;
}

/* p's clock against ours, from a proven reply stamped `stamp` (its
 * clock, in microseconds) to our request stamped p->req_stamp: the reply
 * was made about halfway through the round trip. */
static void measure(peer *p, uint64_t stamp)
{
    uint64_t now = p->reply_us; /* not when it was opened (open_job) */
    if (now < p->req_stamp)
        return; /* our own clock stepped back meanwhile */
    uint64_t mid = p->req_stamp + (now - p->req_stamp) / 2;
    p->offset_us =
        stamp >= mid ? (int64_t)(stamp - mid) : -(int64_t)(mid - stamp);
    p->rtt_us = now - p->req_stamp;
    p->offset_at_ms = now / 1000;
}

/* What a reply turned out to be (check_reply). */
typedef enum {
    REPLY_USE,        /* proven, from a trusted node: use it */
    REPLY_INTRODUCED, /* it named the node at p's address, nothing more */
    REPLY_RETRY,      /* refused as stale: ask again, once, at once */
    REPLY_REFUSED     /* not used; p failed (counted and logged) */
} reply_kind;

/* Proves a reply: the answer to our request (signed by its sender, bound
 * to us and to the request's stamp), from a trusted node, claiming no
 * more of our own log than we have. A refusal by the peer, or a reply
 * that fails any of this, fails the exchange. */
static reply_kind check_reply(jv_repl *r, peer *p, jv_msg *m)
{
    const jv_id *self = &r->node->kp.pk;
    mreason why = MR_COUNT;
    char msg[160];
    msg[0] = '\0';
    if (m->type != JV_MSG_SYNC_REPLY && m->type != JV_MSG_SNAP_REPLY)
        why = MR_MALFORMED;
    else if (jv_msg_verify(m))
        why = MR_BAD_SIGNATURE;
    else if (!jv_id_eq(&m->to, self) || m->echo != p->req_stamp)
        why = MR_STALE; /* not the answer to this request: a replay */
    if (why != MR_COUNT) {
        refuse_msg(r, why, &m->from);
        snprintf(msg, sizeof(msg), "bad reply: %s", mreason_name[why]);
        fail(p, msg);
        return REPLY_REFUSED;
    }
    /* Proven from here on: m->from holds its key and answered us. Its
     * stamp tells its clock, a refusal's too: a node whose clock is off
     * learns it from the `stale` refusals it gets. */
    if (is_trusted(r, &m->from))
        measure(p, m->stamp);
    if (m->refused == JV_REFUSED_RECIPIENT &&
        (p->probing || !jv_id_eq(&p->id, &m->from)))
        return REPLY_INTRODUCED;
    /* A request that waited for a connection while the peer restarted
     * is older than the peer's start: one new request goes through. */
    if (m->refused == JV_REFUSED_STALE && !p->stale_retried) {
        p->stale_retried = true;
        return REPLY_RETRY;
    }
    /* It does not keep what our vector was based on (it restarted, say):
     * once more with the vector whole. */
    if (m->refused == JV_REFUSED_BASE && !p->rebased) {
        jv_vvlinks_forget(r->links, &m->from);
        p->rebased = true;
        count(r, "jarvis_repl_exchanges_total", "outcome", "rebased", 1);
        return REPLY_RETRY;
    }
    if (m->refused) {
        static const char *const what[] = {
            "",
            "our signature did not verify there",
            "our request was not fresh there (clocks apart?)",
            "this node is not on its trust list",
            "it is not the node we addressed",
            "our vector claimed more of its log than it has",
            "it kept no base for our vector"};
        snprintf(msg, sizeof(msg), "refused by the peer: %s", what[m->refused]);
        fail_as(p, msg, "refused");
        return REPLY_REFUSED;
    }
    if (!is_trusted(r, &m->from))
        why = MR_UNTRUSTED;
    else if (!take_vector(r, m)) {
        /* Based on a message of ours it thinks we keep: we forgot it
         * meanwhile (for room); our next request says so. */
        if (!p->rebased) {
            p->rebased = true;
            count(r, "jarvis_repl_exchanges_total", "outcome", "rebased", 1);
            return REPLY_RETRY;
        }
        fail(p, "bad reply: its vector is based on nothing kept here");
        return REPLY_REFUSED;
    } else if (overclaims(r, &m->have))
        why = MR_CLAIM;
    if (why != MR_COUNT) {
        char hex[JV_ID_HEX];
        jv_id_hex(&m->from, hex);
        refuse_msg(r, why, &m->from);
        snprintf(msg, sizeof(msg), "node %.16s: %s", hex,
                 why == MR_UNTRUSTED ? "not trusted"
                                     : "claims more of our log than we have");
        fail(p, msg);
        return REPLY_REFUSED;
    }
    return REPLY_USE;
}

/* Binds p's address to the node id its proven reply names. */
static void bind_id(peer *p, const jv_id *id)
{
    if (p->id_known && !jv_id_eq(&p->id, id)) {
        char hex[JV_ID_HEX];
        jv_id_hex(id, hex);
        jv_warn("repl", "peer %s is now node %.16s", p->addr, hex);
        /* What we knew belongs to the node that was there before. */
        jv_vv_clear(&p->have);
        jv_vv_clear(&p->known[0]);
        jv_vv_clear(&p->known[1]);
        jv_vv_clear(&p->delivered);
        p->delivered_stamp = 0;
        p->have_known = false;
        jv_vv_clear(&p->links);
    }
    p->id = *id;
    p->id_known = true;
}

/* A reply that names the node at p's address: ourselves, a node we do
 * not trust (the exchange fails until it is trusted), or one we pull
 * from at once. */
static void take_introduction(jv_repl *r, peer *p, const jv_msg *m)
{
    if (jv_id_eq(&m->from, &r->node->kp.pk)) {
        /* A shared peer list names every node, this one included. */
        jv_info("repl", "peer %s is this node itself: not dialled", p->addr);
        mark_self(p);
        return;
    }
    bind_id(p, &m->from);
    p->last_contact_ms = now_ms(r);
    if (!is_trusted(r, &m->from)) {
        char hex[JV_ID_HEX], msg[160];
        jv_id_hex(&m->from, hex);
        refuse_msg(r, MR_UNTRUSTED, &m->from);
        snprintf(msg, sizeof(msg), "node %.16s is not trusted", hex);
        fail(p, msg);
        return;
    }
    p->state = P_IDLE;
    sync_with(p);
}

/* A proven reply from a trusted node: what it says it holds. */
static void take_reply(jv_repl *r, peer *p, const jv_msg *m)
{
    bind_id(p, &m->from);
    p->stale_retried = p->rebased = false;
    learn_pushes(p, &m->have);
    /* A reply opened off the loop may come after newer messages of p's
     * (requests): then it only adds to what they told. */
    if (m->stamp < p->have_stamp) {
        jv_vv_merge(&p->have, &m->have);
    } else {
        jv_vv_copy(&p->have, &m->have);
        p->have_stamp = m->stamp;
    }
    jv_vv_merge(&p->have, &p->sent);
    p->have_known = true;
    if (regraft(r, p))
        p->again = true;
    learn(p, &m->have);
    /* It answered: it received what our request carried. Not a fact of
     * what it holds (it may hold some aside, or refuse them): only its
     * requests older than this reply are answered as if it had them. */
    jv_vv_merge(&p->delivered, &p->sent);
    p->delivered_stamp = m->stamp;
    p->delivered_ms = now_ms(r);
    p->claim_self = jv_vv_get(&m->have, &r->node->restored_from);
    if (!p->reachable) {
        jv_info("repl", "peer %s reachable", p->addr);
        r->host.peer_seen(r->host.ctx, p->addr, p->id_known ? &p->id : NULL,
                          true);
    }
    p->reachable = true;
    p->trouble = T_NONE;
    p->version = m->version;
    p->down_since_ms = 0;
    p->failures = 0;
    p->last_error[0] = '\0';
    p->last_contact_ms = now_ms(r);
    p->next_try_ms = 0;
    count(r, "jarvis_repl_exchanges_total", "outcome", "ok", 1);
}

/* -- snapshots (docs/protocol.md, "Snapshot bootstrap") ------------------- */

_Static_assert(JV_SNAP_CHUNK == JV_WIRE_SNAP_CHUNK,
               "base chunks travel as they are stored");

enum {
    SF_NONE,
    SF_FLIP,
    SF_UNTRUSTED,
    SF_TRUNCATE
};

/* Whether a node holding `them` lacks batches this node compacted: some
 * origin's cut is above what it holds. */
static bool lacks_compacted(jv_store *st, const jv_vv *them)
{
    jv_vv cut;
    bool lacks = false;
    jv_vv_init(&cut);
    if (jv_store_cut_get(st, &cut) == JV_OK)
        for (size_t i = 0; i < cut.n && !lacks; i++)
            lacks = cut.v[i].seq > jv_vv_get(them, &cut.v[i].id);
    jv_vv_fini(&cut);
    return lacks;
}

/* Tests (--test-faults): what a faulty or lying sender would send. */
static void snap_fault(int fault, jv_wire_snap *ws, jv_buf *chunk)
{
    if (fault == SF_FLIP && chunk->len)
        chunk->data[chunk->len / 2] ^= 0x01;
    if (fault == SF_UNTRUSTED) {
        jv_keypair k;
        if (jv_keypair_generate(&k) == JV_OK) {
            ws->maker = k.pk;
            jv_snap_sign(ws->digest, &k, ws->sig);
            jv_keypair_wipe(&k);
        }
    }
    if (fault == SF_TRUNCATE && ws->total > 16) {
        /* Shorter than signed, and said to be so. */
        ws->total -= 9;
        if (ws->offset + chunk->len > ws->total)
            chunk->len = (size_t)(ws->total - ws->offset);
    }
    ws->data = chunk->data;
    ws->len = chunk->len;
}

static void snap_reset(jv_repl *r)
{
    r->snap.active = false;
    jv_buf_fini(&r->snap.data);
    jv_buf_init(&r->snap.data);
}

/* Asks p for the chunk at `offset` of the snapshot being received (a
 * peer whose base is another answers with its own first chunk). Built on
 * the sync reader as an exchange's request is: our vector counts the
 * batches held aside, which only a store read tells. */
static jv_err snap_send(jv_repl *r, peer *p, uint64_t offset)
{
    jv_err err = JV_ENOMEM;
    ex_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return err;
    work_init(&j->w, r);
    jv_vv_init(&j->sent);
    j->p = p;
    j->to = p->id;
    j->pull = true; /* a transfer holds other pulls back */
    j->snap = true;
    memcpy(j->ws.digest, r->snap.head.digest, JV_HASH_LEN);
    j->ws.offset = offset;
    j->w.h = (head){.type = JV_MSG_SNAP,
                    .to = &j->to,
                    .echo = 0,
                    .refused = JV_REFUSED_NONE,
                    .snap = &j->ws};
    if ((err = link_head(r, &p->id, older(p), &j->w.h, NULL)) ||
        (err = jv_vv_copy(&j->w.applied, &r->applied)) ||
        (err = jv_vv_copy(&j->w.pending, &r->pending)) ||
        (err = ex_submit(r, p, j))) {
        ex_free(j);
        return err;
    }
    return JV_OK;
}

/* A SNAP request j to p could not be built, or (built) sent: the
 * transfer of the chunk at its offset stops (it starts over from a
 * peer's next answer), or the second peer asked for its digest (offset
 * 0) was not asked after all; only if that transfer is still the one
 * under way. True if p is back to what it did before (a build failed,
 * this node's doing): no failure of p's. */
static bool snap_unsent(jv_repl *r, peer *p, const ex_job *j, bool built)
{
    bool current = r->snap.active &&
                   memcmp(r->snap.head.digest, j->ws.digest, JV_HASH_LEN) == 0;
    if (j->ws.offset) {
        if (current && jv_id_eq(&r->snap.from, &j->to) &&
            r->snap.data.len == j->ws.offset)
            snap_reset(r);
        if (built)
            return false;
        p->state = P_APPLYING;
        continue_exchange(r, p->addr, false);
        return true;
    }
    if (current && r->snap.asked && jv_id_eq(&r->snap.asked_of, &j->to))
        r->snap.asked = false;
    if (built)
        return false;
    p->state = P_IDLE; /* it was idle when asked */
    return true;
}

/* Asks p for the next chunk of the snapshot being received. */
static void snap_request(jv_repl *r, peer *p)
{
    if (snap_send(r, p, r->snap.data.len) != JV_OK) {
        snap_reset(r);
        p->state = P_APPLYING;
        continue_exchange(r, p->addr, false);
    }
}

/* Asks a second trusted peer, idle and reachable, for the first chunk of
 * its base: its digest is compared with the snapshot being received
 * (take_snap_chunk). */
static void snap_ask_second(jv_repl *r)
{
    for (peer *q = r->peers; q && !r->snap.asked; q = q->next) {
        if (q->is_self || !q->id_known || !q->reachable || q->state != P_IDLE ||
            jv_id_eq(&q->id, &r->snap.from) || !is_trusted(r, &q->id))
            continue;
        if (snap_send(r, q, 0) == JV_OK) {
            r->snap.asked = true;
            r->snap.asked_of = q->id;
            jv_info("repl", "asking %s for its snapshot's digest, to compare",
                    q->addr);
        }
    }
}

/* The length of the vector section at the start of a snapshot's encoding
 * (snapshot.h: "JVSNAP" 0x01, then rows of tag 1), 0 if these bytes do not
 * hold all of it. */
static size_t snap_vv_len(const uint8_t *d, size_t len)
{
    enum {
        HEAD = 7,
        ROW = 1 + JV_ID_LEN + 8 + JV_HASH_LEN
    };
    size_t at = HEAD;
    while (at < len && d[at] == 1 && at + ROW <= len)
        at += ROW;
    return at < len && d[at] != 1 ? at : 0;
}

/* The answer of the peer asked by snap_ask_second: the same digest is the
 * same state at the same vector (the encoding is canonical and starts with
 * its vector); another digest at the same vector means one of the two
 * states is wrong. */
static void snap_compare(jv_repl *r, const jv_msg *m)
{
    const jv_wire_snap *w = &m->snap;
    char a[JV_ID_HEX], b[JV_ID_HEX];
    jv_id_hex(&r->snap.from, a);
    jv_id_hex(&m->from, b);
    size_t la = r->snap.vvsec.len, lb = snap_vv_len(w->data, w->len);
    r->snap.answered = true;
    if (memcmp(r->snap.head.digest, w->digest, JV_HASH_LEN) == 0) {
        jv_info("repl",
                "snapshot of node %.16s confirmed by node %.16s: the same "
                "digest, so the same state at the same vector",
                a, b);
        r->snap.confirmed = true;
    } else if (la && la == lb && memcmp(r->snap.vvsec.data, w->data, la) == 0) {
        jv_warn("repl",
                "snapshots of nodes %.16s and %.16s differ at the same "
                "vector: one of them holds a wrong state",
                a, b);
        jv_metrics_add(M(r), "jarvis_snapshots_disagreeing_total", NULL, 1);
    } else {
        jv_info("repl",
                "snapshot of node %.16s not compared: node %.16s's base is "
                "at another vector",
                a, b);
    }
}

typedef struct {
    jv_repl *r;
    jv_id from;
    jv_snap_info info;
    jv_buf data;
    jv_keypair kp;
    char msg[256];
    jv_vv vv; /* the applied vector after it, when vv_read */
    bool vv_read;
} install_job;

static jv_err install_run(jv_store *st, void *arg)
{
    install_job *j = arg;
    jv_err err = jv_store_snap_install(st, &j->kp, j->data.data, j->data.len,
                                       &j->info, j->msg, sizeof(j->msg));
    if (!err)
        j->vv_read = jv_store_vv(st, &j->vv) == JV_OK;
    return err;
}

static const char *refusal_reason(jv_err err)
{
    switch (err) {
    case JV_EDECODE:
    case JV_ETRUNC:
    case JV_ETOOBIG:
        return "digest_or_encoding";
    case JV_ESIG:
        return "bad_signature";
    case JV_EUNTRUSTED:
        return "untrusted_maker";
    case JV_EEQUIVOCATE:
        return "equivocation";
    default:
        return "error";
    }
}

static void install_done(jv_node *n, jv_err err, void *arg)
{
    install_job *j = arg;
    jv_repl *r = j->r;
    char hex[JV_ID_HEX], maker[JV_ID_HEX];
    jv_id_hex(&j->from, hex);
    jv_id_hex(&j->info.maker, maker);
    r->snap.installing = false;
    r->applying--;
    if (err == JV_OK) {
        jv_metrics_add(n->metrics, "jarvis_snapshots_installed_total", NULL, 1);
        jv_info("repl",
                "installed the snapshot from node %.16s (made by %.16s, "
                "%" PRIu64 " bytes, verified): joined into this node's state",
                hex, maker, j->info.bytes);
        /* Else the vector the host's writer job reads next (below)
         * brings it: the loop reads no store. */
        if (j->vv_read)
            (void)jv_vv_merge(&r->applied, &j->vv);
        /* The host re-checks held batches and has the writer read the
         * trust list and the vector again (the install ran on a
         * connection of its own). */
        peer *p = r->stopping ? NULL : find_id(r, &j->from);
        if (p && p->state == P_IDLE)
            exchange(p, true);
    } else if (err == JV_EBUSY) {
        /* A compaction round switched the base under the install: nothing
         * was applied; the next pull brings the snapshot again. */
        jv_info("repl",
                "snapshot from node %.16s not installed: %s (again "
                "at the next pull)",
                hex, j->msg);
    } else if (err != JV_ECLOSED) {
        char l[64];
        snprintf(l, sizeof(l), "reason=\"%s\"", refusal_reason(err));
        jv_metrics_add(n->metrics, "jarvis_snapshots_refused_total", l, 1);
        jv_warn("repl",
                "refused the snapshot from node %.16s: %s (nothing applied)",
                hex, j->msg[0] ? j->msg : jv_strerror(err));
    }
    jv_keypair_wipe(&j->kp);
    jv_buf_fini(&j->data);
    jv_vv_fini(&j->vv);
    jv_free(j);
    maybe_finish_stop(r);
}

/* The whole snapshot arrived: verified and installed off the loop. */
static void snap_install(jv_repl *r)
{
    install_job *j = jv_calloc(1, sizeof(*j));
    if (!j) {
        snap_reset(r);
        return;
    }
    j->r = r;
    j->from = r->snap.from;
    j->info.maker = r->snap.head.maker;
    j->info.made_ms = r->snap.head.made_ms;
    memcpy(j->info.digest, r->snap.head.digest, JV_HASH_LEN);
    memcpy(j->info.sig, r->snap.head.sig, JV_SIG_LEN);
    j->info.bytes = r->snap.head.total;
    j->data = r->snap.data; /* moved */
    jv_buf_init(&r->snap.data);
    r->snap.active = false;
    j->kp = r->node->origin;
    jv_vv_init(&j->vv);
    if (r->host.offloop(r->host.ctx, install_run, install_done, j) != JV_OK) {
        jv_buf_fini(&j->data);
        jv_keypair_wipe(&j->kp);
        jv_free(j);
        return;
    }
    r->snap.installing = true;
    r->applying++; /* the repl stops only after it (maybe_finish_stop) */
}

/* A chunk of a peer's snapshot (a proven reply of a trusted node). */
static void take_snap_chunk(jv_repl *r, peer *p, const jv_msg *m)
{
    const jv_wire_snap *w = &m->snap;
    uint64_t now = now_ms(r);
    bool same = r->snap.head.total &&
                memcmp(r->snap.head.digest, w->digest, JV_HASH_LEN) == 0;
    if (r->snap.asked && !r->snap.answered && w->offset == 0 &&
        jv_id_eq(&r->snap.asked_of, &m->from)) {
        snap_compare(r, m);
        continue_exchange(r, p->addr, false);
        return;
    }
    /* A second trusted peer with the same digest holds the same state at
     * the same vector (the encoding is canonical and starts with it). */
    if (same && !r->snap.confirmed && !jv_id_eq(&r->snap.from, &m->from)) {
        char a[JV_ID_HEX], b[JV_ID_HEX], d[2 * JV_HASH_LEN + 1];
        jv_id_hex(&r->snap.from, a);
        jv_id_hex(&m->from, b);
        jv_hex(w->digest, JV_HASH_LEN, d);
        jv_info("repl",
                "snapshot %.16s of node %.16s confirmed by node %.16s: the "
                "same digest, so the same state at the same vector",
                d, a, b);
        r->snap.confirmed = true;
    }
    if (r->snap.installing || r->stopping) {
        continue_exchange(r, p->addr, false);
        return;
    }
    /* One transfer at a time: another peer's chunks wait, unless the one
     * under way stalled. */
    if (r->snap.active && !jv_id_eq(&r->snap.from, &m->from) &&
        now - r->snap.last_ms < 2 * r->o.timeout_ms) {
        continue_exchange(r, p->addr, false);
        return;
    }
    /* Another snapshot, or a chunk out of place: start over. */
    if (r->snap.active &&
        (!jv_id_eq(&r->snap.from, &m->from) || !same ||
         r->snap.head.total != w->total || w->offset != r->snap.data.len))
        snap_reset(r);
    r->snap.last_ms = now;
    if (!r->snap.active) {
        if (w->offset != 0) {
            continue_exchange(r, p->addr, false);
            return;
        }
        r->snap.active = true;
        r->snap.confirmed = r->snap.asked = r->snap.answered = false;
        r->snap.vvsec.len = 0;
        r->snap.from = m->from;
        r->snap.head = *w;
        r->snap.head.data = NULL;
        r->snap.head.len = 0;
        jv_info("repl",
                "peer %s has compacted batches this node lacks: receiving "
                "its snapshot (%" PRIu64 " bytes)",
                p->addr, w->total);
    }
    if (jv_buf_append(&r->snap.data, w->data, w->len) != JV_OK) {
        snap_reset(r);
        continue_exchange(r, p->addr, false);
        return;
    }
    if (w->offset == 0 && !r->snap.asked) {
        size_t n = snap_vv_len(w->data, w->len);
        if (n && jv_buf_append(&r->snap.vvsec, w->data, n) == JV_OK)
            snap_ask_second(r);
    }
    if (r->snap.data.len >= w->total || w->len == 0) {
        snap_install(r);
        continue_exchange(r, p->addr, false);
        return;
    }
    snap_request(r, p);
}

jv_err jv_repl_snap_fault(jv_repl *r, const char *mode)
{
    static const char *const names[] = {"none", "flip", "untrusted",
                                        "truncate"};
    for (int i = 0; i < 4; i++)
        if (strcmp(mode, names[i]) == 0) {
            r->snap_fault = i;
            return JV_OK;
        }
    return JV_EINVAL;
}

const char *jv_repl_snap_fault_mode(const jv_repl *r)
{
    static const char *const names[] = {"none", "flip", "untrusted",
                                        "truncate"};
    return r && r->snap_fault >= 0 && r->snap_fault < 4 ? names[r->snap_fault]
                                                        : "none";
}

static void reply_opened(jv_repl *r, peer *p, const uint8_t *msg, size_t len,
                         jv_err err, jv_msg *m);

/* A message this large (a reply or a request) is opened off the loop:
 * unsealing it, inflating it and hashing it whole (a catch-up's reply is
 * up to half of max_message) would hold every HTTP client of this node
 * for milliseconds. A smaller one is unsealed on the loop, and only
 * inflated off it, when compressed: the loop never runs zstd. */
#define OPEN_OFF_LOOP (64u << 10)

/* A reply of p's (P_OPENING meanwhile), or a request (in), opened on the
 * sync reader thread, then taken on the loop as one opened there. */
typedef struct open_job {
    jv_read_job job;
    jv_repl *r;
    peer *p;        /* a reply's; NULL once the peer is freed */
    jv_inbound *in; /* a request's (p NULL) */
    build_env env;  /* the keyring at arrival: the frame's */
    size_t max_message;
    jv_buf frame; /* a copy: the transport's is lent to on_reply only */
    jv_buf plain, scratch;
    bool unsealed; /* plain holds the frame, unsealed on the loop */
    jv_msg m;      /* borrows from plain or scratch */
    open_info info;
    jv_err err;
} open_job;

static void open_free(open_job *j)
{
    jv_keyring_wipe(&j->env.ring);
    jv_msg_fini(&j->m);
    jv_buf_fini(&j->frame);
    jv_buf_fini(&j->plain);
    jv_buf_fini(&j->scratch);
    jv_free(j);
}

/* Sync reader thread. */
static jv_err open_run(jv_store *st, void *arg)
{
    (void)st;
    open_job *j = arg;
    if (j->unsealed) {
        j->info.opened = true;
        j->err = decode_plain(j->max_message, &j->plain, &j->scratch, &j->m,
                              &j->info);
        return JV_OK;
    }
    j->err = open_decode(j->env.keyed ? &j->env.ring : NULL, j->max_message,
                         j->frame.data, j->frame.len, &j->plain, &j->scratch,
                         &j->m, &j->info);
    return JV_OK;
}

static void request_opened(jv_repl *r, jv_inbound *in, size_t len, jv_err oerr,
                           jv_buf *plain, jv_msg *m);

/* Takes the job's frame as open_message takes one on the loop: its key
 * id (refusals and take_request show it; other frames have been opened
 * since), and the refusal counted if it could not be opened. */
static void job_taken(jv_repl *r, const open_job *j)
{
    jv_frame_key_hex(j->frame.data, j->frame.len, r->frame_key);
    if (j->err)
        open_refused(r, j->err, &j->info);
}

/* Loop thread: a request opened. */
static void request_open_done(open_job *j, jv_err err, const char *msg)
{
    jv_repl *r = j->r;
    if (err || r->stopping) {
        if (err)
            jv_error("repl", "cannot open a peer's request: %s (%s)",
                     jv_strerror(err), msg);
        r->host.tp_drop(j->in);
        return;
    }
    job_taken(r, j);
    request_opened(r, j->in, j->frame.len, j->err, &j->plain, &j->m);
}

/* Loop thread. */
static void open_done(void *arg, jv_err err, const char *msg)
{
    open_job *j = arg;
    jv_repl *r = j->r;
    peer *p = j->p;
    r->serving--;
    if (j->in) {
        request_open_done(j, err, msg);
        goto out;
    }
    if (p)
        p->opening = NULL;
    if (!p || r->stopping || p->state != P_OPENING)
        goto out; /* failed or freed meanwhile: the reply goes unused */
    p->state = P_SENDING;
    if (err) {
        char why[192];
        snprintf(why, sizeof(why), "cannot open its reply: %s%s%s",
                 jv_strerror(err), msg[0] ? ": " : "", msg);
        fail(p, why);
        goto out;
    }
    job_taken(r, j);
    reply_opened(r, p, j->frame.data, j->frame.len, j->err, &j->m);
out:
    open_free(j);
    maybe_finish_stop(r);
}

static void buf_swap(jv_buf *a, jv_buf *b)
{
    jv_buf t = *a;
    *a = *b;
    *b = t;
}

/* Hands p's reply, or the request in, to the sync reader to open; plain
 * (NULL: not yet) holds it unsealed already, and is taken. False if it
 * could not: it is opened here then, plain left as it was. */
static bool open_off_loop(jv_repl *r, peer *p, jv_inbound *in,
                          const uint8_t *msg, size_t len, jv_buf *plain)
{
    open_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return false;
    j->r = r;
    j->p = p;
    j->in = in;
    j->max_message = r->o.max_message;
    if (!plain)
        env_init(r, &j->env); /* the keyring, to unseal it */
    jv_buf_init(&j->frame);
    jv_buf_init(&j->plain);
    jv_buf_init(&j->scratch);
    jv_msg_init(&j->m);
    j->job.fn = open_run;
    j->job.done = open_done;
    j->job.arg = j;
    if ((j->unsealed = plain != NULL))
        buf_swap(&j->plain, plain);
    if (jv_buf_append(&j->frame, msg, len) != JV_OK ||
        (plain ? r->host.open : r->host.read)(r->host.ctx, &j->job) != JV_OK) {
        if (plain)
            buf_swap(&j->plain, plain);
        open_free(j);
        return false;
    }
    r->serving++;
    if (p) {
        p->state = P_OPENING;
        p->opening = j;
    }
    return true;
}

/* Opens a frame on the loop and decodes its message into m (borrowing
 * from plain or r->scratch), refusals counted here. Or hands it, p's
 * reply or the request in, to the sync reader (open_off_loop) when it is
 * large or its payload compressed: then *handed, and open_done goes on. */
static jv_err open_message(jv_repl *r, peer *p, jv_inbound *in,
                           const uint8_t *msg, size_t len, jv_buf *plain,
                           jv_msg *m, bool *handed)
{
    open_info info = {0};
    jv_err err;
    *handed = len >= OPEN_OFF_LOOP && open_off_loop(r, p, in, msg, len, NULL);
    if (*handed)
        return JV_OK;
    jv_frame_key_hex(msg, len, r->frame_key);
    if (!(err = jv_open(r->keyed ? &r->ring : NULL, msg, len, plain))) {
        info.opened = true;
        *handed = jv_msg_compressed(plain->data, plain->len) &&
                  open_off_loop(r, p, in, msg, len, plain);
        if (*handed)
            return JV_OK;
        err = decode_plain(r->o.max_message, plain, &r->scratch, m, &info);
    }
    if (err)
        open_refused(r, err, &info);
    return err;
}

static void on_reply(void *arg, jv_tpeer *tp, jv_err err, const uint8_t *msg,
                     size_t len)
{
    jv_repl *r = arg;
    peer *p = r->host.tp_user(tp);
    jv_buf plain;
    jv_msg m;
    char why[192];
    bool handed;

    if (p->state != P_SENDING)
        return;
    if (p->recalled) {
        p->recalled = false;
        if (err == JV_ECLOSED && !r->stopping) {
            /* Taken back before it left (jv_repl_set_keyring): the same
             * exchange again, sealed under the key now in use. */
            p->state = P_IDLE;
            exchange(p, p->pulling);
            return;
        }
    }
    if (!err && p->trouble == T_NET)
        p->trouble = T_NONE; /* a reply: connected, whatever on_link says */
    if (err == JV_ENET) {
        /* The connection closed under the request: on_link follows at
         * once with the reason, and logs it. */
        fail(p, NULL);
        return;
    }
    if (err) {
        snprintf(why, sizeof(why), "%s", jv_strerror(err));
        fail(p, why);
        return;
    }
    jv_buf_init(&plain);
    jv_msg_init(&m);
    p->reply_us = now_ms(r) * 1000;
    p->bytes_in += len;
    count(r, "jarvis_repl_bytes_total", "direction", "in", (double)len);
    if (take_notice(r, p, msg, len))
        goto out;
    err = open_message(r, p, NULL, msg, len, &plain, &m, &handed);
    if (!handed)
        reply_opened(r, p, msg, len, err, &m);
out:
    jv_msg_fini(&m);
    jv_buf_fini(&plain);
}

/* A reply of p's opened (err: it could not be; refusals counted). */
static void reply_opened(jv_repl *r, peer *p, const uint8_t *msg, size_t len,
                         jv_err err, jv_msg *m)
{
    char why[192];
    if (err) {
        if (err == JV_ENOTFOUND || err == JV_EPERM)
            troubled(p, T_KEY, unknown_key_text(r, why, sizeof(why)));
        else if (err == JV_EVERSION)
            troubled(p, T_VERSION,
                     version_text(r->peer_version, why, sizeof(why)));
        else {
            snprintf(why, sizeof(why), "bad reply: %s", jv_strerror(err));
            fail(p, why);
        }
        return;
    }
    jv_frame_key_hex(msg, len, p->key_seen);
    switch (check_reply(r, p, m)) {
    case REPLY_REFUSED:
        break;
    case REPLY_INTRODUCED:
        take_introduction(r, p, m);
        break;
    case REPLY_RETRY:
        p->state = P_IDLE;
        exchange(p, p->pulling);
        break;
    case REPLY_USE:
        take_reply(r, p, m);
        p->state = P_APPLYING;
        if (m->type == JV_MSG_SNAP_REPLY) {
            take_snap_chunk(r, p, m);
            break;
        }
        if (!apply_batches(r, p, m, true))
            continue_exchange(r, p->addr, m->more);
        break;
    }
}

/* -- inbound requests ----------------------------------------------------- */

/* Whether a request is answered in full: JV_REFUSED_NONE, or why not
 * (counted and logged here). A first contact (addressed to no id), and
 * ourselves through our own address, get JV_REFUSED_RECIPIENT uncounted:
 * the refusal names this node, which is what they asked. */
static jv_refusal check_request(jv_repl *r, jv_msg *m)
{
    const jv_id *self = &r->node->kp.pk;
    if (jv_msg_verify(m)) {
        refuse_msg(r, MR_BAD_SIGNATURE, &m->from);
        return JV_REFUSED_PROOF;
    }
    if (jv_id_is_zero(&m->to) || jv_id_eq(&m->from, self))
        return JV_REFUSED_RECIPIENT;
    if (!jv_id_eq(&m->to, self)) {
        refuse_msg(r, MR_WRONG_RECIPIENT, &m->from);
        return JV_REFUSED_RECIPIENT;
    }
    if (!fresh_ok(r, &m->from, m->stamp)) {
        refuse_msg(r, MR_STALE, &m->from);
        return JV_REFUSED_STALE;
    }
    if (!is_trusted(r, &m->from)) {
        refuse_msg(r, MR_UNTRUSTED, &m->from);
        return JV_REFUSED_UNTRUSTED;
    }
    fresh_note(r, &m->from, m->stamp);
    if (!take_vector(r, m))
        return JV_REFUSED_BASE; /* uncounted: it asks again at once */
    if (overclaims(r, &m->have)) {
        refuse_msg(r, MR_CLAIM, &m->from);
        return JV_REFUSED_CLAIM;
    }
    return JV_REFUSED_NONE;
}

/* Answers a request with a refusal: signed, bound to its sender and
 * stamp, and carrying nothing else (no vector, no batches). */
static void send_refusal(jv_repl *r, jv_inbound *in, const jv_msg *m,
                         jv_refusal why)
{
    head h = {.type = JV_MSG_SYNC_REPLY,
              .to = &m->from,
              .echo = m->stamp,
              .refused = why,
              .snap = NULL};
    h.version = m->version;
    jv_vv none;
    jv_buf frame;
    jv_vv_init(&none);
    jv_buf_init(&frame);
    if (build(r, &h, &none, NULL, false, 0, &frame, NULL) == JV_OK) {
        count(r, "jarvis_repl_bytes_total", "direction", "out",
              (double)frame.len);
        r->host.tp_reply(in, frame.data, frame.len);
    } else {
        r->host.tp_drop(in);
    }
    jv_buf_fini(&frame);
}

/* A proven request from a trusted node: what it says it holds. It is
 * credited to the peer entry of its id, or, if no entry has that id, to
 * the entry of the address it says (and signed) it listens on, when that
 * entry's node is not known yet (our probe of it may still be under way):
 * a trusted node's word about itself. A proven reply from the address
 * corrects it if it was wrong (bind_id). */
static peer *take_request(jv_repl *r, const jv_msg *m, const char *addr,
                          size_t len)
{
    peer *p = find_id(r, &m->from);
    if (!p && addr[0] && (p = find_addr(r, addr)) &&
        (p->id_known || p->is_self))
        p = NULL;
    if (!p)
        return NULL;
    bind_id(p, &m->from);
    if (m->stamp > p->have_stamp)
        p->have_stamp = m->stamp;
    if (p->have_known)
        jv_vv_merge(&p->have, &m->have);
    else
        jv_vv_copy(&p->have, &m->have);
    p->have_known = true;
    learn(p, &m->have);
    p->last_contact_ms = now_ms(r);
    p->bytes_in += len;
    p->version = m->version;
    memcpy(p->key_seen, r->frame_key, sizeof(p->key_seen));
    return p;
}

/*
 * Answering a request. What the answer needs of the loop (the vectors,
 * a stamp, the keys) is taken now; reading the batches the peer lacks,
 * encoding, signing, compressing and sealing them run on the sync reader
 * thread (readers.h), and the answer is sent back on the loop. A catch-up
 * of millions of operations thus never holds the loop up. The peer is
 * looked up again by id when the answer is ready: it may be gone.
 */
typedef struct {
    msg_work w;
    jv_inbound *in;
    jv_id from;
    /* A chunk of the base snapshot instead of batches: asked for (a SNAP
     * request: its digest and offset), or for a pull from a node that
     * lacks batches compacted here (its own vector, `asked_have`). */
    bool snap_asked;
    uint8_t snap_digest[JV_HASH_LEN];
    uint64_t snap_offset;
    jv_vv asked_have;
    int fault; /* tests: r->snap_fault */
    /* Out: the answer is a chunk of the base (ws, chunk), or nothing. */
    bool snap, nothing;
    jv_wire_snap ws;
    jv_buf chunk;
} serve_job;

static void serve_free(serve_job *j)
{
    work_fini(&j->w);
    jv_vv_fini(&j->asked_have);
    jv_buf_fini(&j->chunk);
    jv_free(j);
}

/* Sync reader thread: the chunk of the base asked for if it is still the
 * current base, else its first, with our vector sent whole. JV_ENOTFOUND:
 * there is no base. */
static jv_err serve_snapshot(jv_store *st, serve_job *j)
{
    jv_snap_info info;
    jv_wire_snap *ws = &j->ws;
    jv_err err = jv_store_read_begin(st);
    if (err)
        return err;
    uint64_t off = j->snap_offset;
    if (!(err = jv_store_base_get(st, &info, NULL)) &&
        (!j->snap_asked ||
         memcmp(j->snap_digest, info.digest, JV_HASH_LEN) != 0 ||
         off % JV_SNAP_CHUNK || off >= info.bytes))
        off = 0;
    if (!err)
        err = jv_store_base_chunk(st, info.gen, off / JV_SNAP_CHUNK, &j->chunk);
    jv_store_read_end(st);
    if (err)
        return err;
    memset(ws, 0, sizeof(*ws));
    ws->maker = info.maker;
    ws->made_ms = info.made_ms;
    memcpy(ws->digest, info.digest, JV_HASH_LEN);
    memcpy(ws->sig, info.sig, JV_SIG_LEN);
    ws->total = info.bytes;
    ws->offset = off;
    snap_fault(j->fault, ws, &j->chunk);
    head h = j->w.h;
    h.type = JV_MSG_SNAP_REPLY;
    h.snap = ws;
    h.base = 0;
    h.base_vv = NULL;
    if ((err = build_with(&j->w.env, &h, j->w.stamp, &j->w.have, NULL, false, 0,
                          &j->w.frame, &j->w.plain)))
        return err;
    j->snap = true;
    return JV_OK;
}

/* Sync reader thread. */
static jv_err serve_run(jv_store *st, void *arg)
{
    serve_job *j = arg;
    jv_err err;
    if ((err = have_on(st, &j->w.applied, &j->w.have)))
        return err;
    /* A pull from a node that lacks batches compacted here gets the
     * snapshot first (docs/protocol.md, "Snapshot bootstrap"); the
     * batches if there is none to send after all. */
    if (j->snap_asked || (j->w.budget && lacks_compacted(st, &j->asked_have))) {
        err = serve_snapshot(st, j);
        if (!err || j->snap_asked) {
            j->nothing = err == JV_ENOTFOUND;
            return j->nothing ? JV_OK : err;
        }
        jv_buf_fini(&j->w.frame);
        jv_buf_init(&j->w.frame);
        j->w.plain = 0;
    }
    if ((err = jv_vv_merge(&j->w.have, &j->w.pending)) ||
        (err = select_on(st, &j->w.applied, j->w.start, &j->w.them, &j->w.trial,
                         j->w.budget, &j->w.s, &j->w.more, NULL)))
        return err;
    return build_with(&j->w.env, &j->w.h, j->w.stamp, &j->w.have, &j->w.s,
                      j->w.more, 0, &j->w.frame, &j->w.plain);
}

/* Loop thread: a chunk of the base went out. */
static void served_snapshot(jv_repl *r, serve_job *j)
{
    if (j->ws.offset)
        return;
    char hex[JV_ID_HEX];
    jv_id_hex(&j->from, hex);
    jv_metrics_add(M(r), "jarvis_snapshots_sent_total", NULL, 1);
    jv_info("repl",
            "node %.16s lacks batches compacted here: sending it the base "
            "snapshot (%" PRIu64 " bytes)",
            hex, j->ws.total);
}

/* Loop thread: the answer is built (or not). */
static void serve_done(void *arg, jv_err err, const char *msg)
{
    serve_job *j = arg;
    jv_repl *r = j->w.r;
    r->serving--;
    if (err || r->stopping || j->nothing) {
        if (err)
            jv_error("repl", "cannot answer a peer: %s (%s)", jv_strerror(err),
                     msg);
        r->host.tp_drop(j->in);
        goto out;
    }
    peer *p = find_id(r, &j->from);
    if (p)
        p->bytes_out += j->w.frame.len;
    if (j->snap)
        served_snapshot(r, j);
    else if (p) {
        p->batches_out += j->w.s.n;
        /* They will have what we just sent. And it pulled those origins'
         * news from us because no push brought them: push them to it
         * from now on (Plumtree's graft). */
        for (size_t i = 0; i < j->w.s.n; i++) {
            jv_batch_head bh;
            if (!jv_batch_peek(j->w.s.data.data + j->w.s.off[i], j->w.s.len[i],
                               &bh)) {
                jv_vv_raise(&p->have, &bh.origin, bh.last_seq);
                (void)jv_vv_raise(&p->gave, &bh.origin, bh.last_seq);
                link_set(p, &bh.origin, true);
            }
        }
    }
    count(r, "jarvis_repl_bytes_uncompressed_total", "direction", "out",
          (double)j->w.plain);
    count(r, "jarvis_repl_bytes_total", "direction", "out",
          (double)j->w.frame.len);
    if (j->w.h.version != 2 && !j->snap)
        (void)jv_vvlinks_sent(r->links, &j->from, j->w.stamp, &j->w.have);
    r->host.tp_reply(j->in, j->w.frame.data, j->w.frame.len);
out:
    serve_free(j);
    maybe_finish_stop(r);
}

/* Answers a proven request: our vector and the batches it lacks (within
 * its budget), or a chunk of the base snapshot (a SNAP request, or a pull
 * from a node that lacks batches compacted here), built off the loop.
 * Returns false if nothing could be sent (in is still the caller's); true
 * once in is taken. */
static bool answer_request(jv_repl *r, jv_inbound *in, peer *p, const jv_msg *m)
{
    jv_err err = JV_ENOMEM;
    serve_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        goto fail;
    work_init(&j->w, r);
    jv_vv_init(&j->asked_have);
    jv_buf_init(&j->chunk);
    j->in = in;
    j->from = m->from;
    j->fault = r->snap_fault;
    j->snap_asked = m->type == JV_MSG_SNAP;
    if (j->snap_asked) {
        memcpy(j->snap_digest, m->snap.digest, JV_HASH_LEN);
        j->snap_offset = m->snap.offset;
    }
    j->w.h = (head){.type = JV_MSG_SYNC_REPLY,
                    .to = &j->from,
                    .echo = m->stamp,
                    .refused = JV_REFUSED_NONE,
                    .snap = NULL};
    if ((err = link_head(r, &m->from, m->version, &j->w.h, &j->w.base)))
        goto fail;
    j->w.budget =
        m->budget < r->o.max_message / 2 ? m->budget : r->o.max_message / 2;
    if ((err = jv_vv_copy(&j->w.applied, &r->applied)) ||
        (err = jv_vv_copy(&j->w.pending, &r->pending)) ||
        (err = jv_vv_copy(&j->asked_have, &m->have)) ||
        (err = p && !j->snap_asked ? theirs(p, &m->have, &j->w.them)
                                   : jv_vv_copy(&j->w.them, &m->have)) ||
        /* What a SNAP request shows of p decides no delivery. */
        (err = p && !j->snap_asked ? delivered_for(p, m->stamp, &j->w.them)
                                   : JV_OK))
        goto fail;
    j->w.start = select_start(r);
    j->w.stamp = next_stamp(r);
    env_init(r, &j->w.env);
    j->w.job.fn = serve_run;
    j->w.job.done = serve_done;
    j->w.job.arg = j;
    if ((err = r->host.read(r->host.ctx, &j->w.job)))
        goto fail;
    r->serving++;
    return true;
fail:
    jv_error("repl", "cannot answer a peer: %s", jv_strerror(err));
    if (j)
        serve_free(j);
    return false;
}

static void on_request(void *arg, jv_inbound *in, const uint8_t *msg,
                       size_t len)
{
    jv_repl *r = arg;
    jv_buf plain;
    jv_msg m;
    bool handed;

    jv_buf_init(&plain);
    jv_msg_init(&m);
    count(r, "jarvis_repl_bytes_total", "direction", "in", (double)len);
    if (r->stopping)
        goto drop;
    if (len > r->o.max_message + JV_SEAL_OVERHEAD) {
        refuse_msg(r, MR_TOO_BIG, NULL);
        goto drop;
    }
    jv_err err = open_message(r, NULL, in, msg, len, &plain, &m, &handed);
    if (!handed)
        request_opened(r, in, len, err, &plain, &m);
    in = NULL;
drop:
    if (in)
        r->host.tp_drop(in);
    jv_msg_fini(&m);
    jv_buf_fini(&plain);
}

/* A request opened (oerr: it could not be; refusals counted): answered,
 * refused or dropped here. plain is free for a notice. */
static void request_opened(jv_repl *r, jv_inbound *in, size_t len, jv_err oerr,
                           jv_buf *plain, jv_msg *m)
{
    jv_refusal why;
    if (oerr == JV_ENOTFOUND || oerr == JV_EPERM || oerr == JV_EVERSION) {
        /* Told, not dropped: its sender shows why rather than a timeout. */
        jv_err nerr = oerr == JV_EVERSION
                          ? jv_notice_version(JV_WIRE_VERSION, plain)
                          : jv_notice_key(r->keyed ? &r->ring : NULL, plain);
        if (nerr == JV_OK) {
            r->host.tp_reply(in, plain->data, plain->len);
            in = NULL;
        }
        goto drop;
    }
    if (oerr)
        goto drop;
    if (m->type != JV_MSG_SYNC && m->type != JV_MSG_SNAP) {
        refuse_msg(r, MR_MALFORMED, NULL);
        goto drop;
    }
    char addr[JV_WIRE_MAX_ADDR + 1];
    snprintf(addr, sizeof(addr), "%.*s", (int)m->from_addr.n, m->from_addr.p);
    if (is_blocked(r, addr, &m->from))
        goto drop;
    if ((why = check_request(r, m))) {
        send_refusal(r, in, m, why);
        in = NULL;
        goto drop;
    }
    peer *p = take_request(r, m, addr, len);
    if (answer_request(r, in, p, m)) {
        in = NULL;
        if (m->type != JV_MSG_SNAP)
            apply_batches(r, p, m, false);
    }
drop:
    if (in)
        r->host.tp_drop(in);
}

static void on_oversized(void *arg, size_t len)
{
    jv_repl *r = arg;
    count(r, "jarvis_repl_bytes_total", "direction", "in", (double)len);
    refuse_msg(r, MR_TOO_BIG, NULL);
}

static void on_listener(void *arg, jv_err err)
{
    jv_repl *r = arg;
    if (err) {
        jv_error("repl",
                 "peer listener on %s is dead and could not be "
                 "re-created: %s; trying again",
                 r->bound, jv_strerror(err));
        return;
    }
    count(r, "jarvis_repl_listener_restarts_total", NULL, NULL, 1);
    jv_warn("repl",
            "peer listener on %s stopped accepting (nng #1518); "
            "re-created it",
            r->bound);
}

/* The connection to p is up (why NULL) or there is none, and why says
 * what connecting gets. Down: shown at once (it need not wait for a
 * request to time out), logged when the reason changes. Up: reachable
 * only once an exchange succeeds, so one is tried now. */
static void on_link(void *arg, jv_tpeer *tp, const char *why)
{
    jv_repl *r = arg;
    peer *p = r->host.tp_user(tp);
    if (r->stopping || p->is_self)
        return;
    if (!why) {
        if (p->trouble == T_NET)
            p->trouble = T_NONE; /* "unreachable" until an exchange */
        if (!p->reachable && p->state == P_IDLE) {
            p->next_try_ms = 0;
            sync_with(p);
        }
        return;
    }
    if (p->reachable || p->trouble != T_NET || strcmp(p->last_error, why))
        jv_warn("repl", "peer %s unreachable: %s", p->addr, why);
    if (p->reachable || !p->down_since_ms)
        p->down_since_ms = now_ms(r);
    if (p->reachable)
        r->host.peer_seen(r->host.ctx, p->addr, p->id_known ? &p->id : NULL,
                          false);
    p->reachable = false;
    p->trouble = T_NET;
    snprintf(p->last_error, sizeof(p->last_error), "%s", why);
}

/* -- scheduling ----------------------------------------------------------- */

/* The peer `src` brought us news of these origins: it holds them, and
 * is upstream of us in their trees. A link to it that nothing was learnt
 * on yet is made lazy, as news_link does for a peer known to hold the
 * news. */
static void came_from(jv_repl *r, peer *src, const jv_id *origins,
                      size_t norigins)
{
    for (size_t o = 0; o < norigins; o++)
        if (link_get(src, &origins[o]) == -1 && src->have_known &&
            jv_vv_get(&src->have, &origins[o]) >=
                jv_vv_get(&r->applied, &origins[o]))
            link_set(src, &origins[o], false);
}

static bool is_source(const peer *p, const char *addr, const jv_id *id)
{
    return (addr && strcmp(p->addr, addr) == 0) ||
           (id && p->id_known && jv_id_eq(&p->id, id));
}

/* Down for longer than an exchange timeout: gone, not a message lost. */
static bool long_down(const peer *p, uint64_t now)
{
    return p->down_since_ms && now - p->down_since_ms > p->r->o.timeout_ms;
}

/* Pushes news of `origins` (norigins 0: of unknown origins) to the peers
 * that get it (see struct link), never to the one it came from. Peers
 * are ranked by rank, those long down last; the first `fanout` of them
 * get what no link says otherwise. The ranking holds still while a peer
 * only waits out a lost message (it is not pushed to meanwhile), and the
 * peer the news came from keeps its place too (it is only not pushed
 * to): otherwise the next peer would move up among the first `fanout`
 * and out again, and push origins whose links it never learnt, most of
 * them as duplicates. */
static void kick(jv_repl *r, const char *exclude_addr, const jv_id *exclude,
                 const jv_id *origins, size_t norigins)
{
    peer *cand[64];
    size_t n = 0;
    uint64_t now = now_ms(r);
    if (!r->o.fanout)
        return; /* anti-entropy only */
    for (peer *p = r->peers; p && n < 64; p = p->next) {
        if (is_source(p, exclude_addr, exclude))
            came_from(r, p, origins, norigins);
        if (p->is_self)
            continue;
        size_t at = n++;
        bool down = long_down(p, now);
        while (at > 0 && (long_down(cand[at - 1], now) > down ||
                          (long_down(cand[at - 1], now) == down &&
                           cand[at - 1]->rank > p->rank))) {
            cand[at] = cand[at - 1];
            at--;
        }
        cand[at] = p;
    }
    for (size_t k = 0; k < n; k++) {
        cand[k]->fanout_slot = k < r->o.fanout;
        if (is_source(cand[k], exclude_addr, exclude) ||
            cand[k]->next_try_ms > now)
            continue;
        bool push = norigins == 0 && cand[k]->fanout_slot;
        for (size_t o = 0; o < norigins; o++)
            push |= link_pushes(cand[k], news_link(r, cand[k], &origins[o]));
        if (push)
            exchange(cand[k], false);
    }
}

/* Whether a pull is under way (its reply not yet applied): another one
 * now would be answered from the same vector and bring the same batches
 * twice, as when a starting node meets all its peers at once. A large
 * reply may take seconds to apply on a busy machine; one that takes longer
 * than an exchange's timeout (two intervals at least) no longer holds the
 * others back. */
#define PULL_BUSY_MS(r)                                             \
    ((r)->o.timeout_ms > 2 * (r)->o.interval_ms ? (r)->o.timeout_ms \
                                                : 2 * (r)->o.interval_ms)
static bool pull_busy(const jv_repl *r, uint64_t now)
{
    for (const peer *p = r->peers; p; p = p->next) {
        if (p->state == P_BUILDING && p->building && p->building->pull &&
            !p->building->probe)
            return true;
        if (p->state != P_IDLE && p->pulling && p->pull_ms &&
            now - p->pull_ms < PULL_BUSY_MS(r))
            return true;
    }
    return false;
}

/* A first exchange with p (met, or back): a pull, or while another pull
 * goes on a push, whose reply says what p holds all the same. */
static void sync_with(peer *p)
{
    exchange(p, !pull_busy(p->r, now_ms(p->r)));
}

static void on_timer(void *arg)
{
    jv_repl *r = arg;
    uint64_t now = now_ms(r);
    peer *unknown = NULL, *cand[64];
    size_t n = 0;
    bool pulling = pull_busy(r, now);
    for (peer *p = r->peers; p; p = p->next) {
        if (p->state != P_IDLE || p->next_try_ms > now || p->is_self)
            continue;
        if (!p->have_known && !unknown)
            unknown = p;
        if (n < 64)
            cand[n++] = p;
    }
    /* Peers never heard from first, then one at random; none while a
     * pull goes on in chunks (it is catching up already). */
    if (!r->chain && !pulling && unknown)
        exchange(unknown, true);
    else if (!r->chain && !pulling && n)
        exchange(cand[rnd(r) % n], true);
    /* After the exchange's build: the scan waits behind it on the sync
     * reader. */
    held_scan(r);
    /* Logs when the clock goes off the peers' or comes back. */
    jv_repl_clock ck;
    jv_repl_clock_get(r, &ck);
    /* Jitter keeps nodes started together from syncing in lockstep. */
    uint64_t iv = r->o.interval_ms;
    timer_arm(r, iv - iv / 5 + rnd(r) % (iv / 5 * 2 + 1));
}

/* -- clocks --------------------------------------------------------------- */

/* The median of recent samples, each moved toward 0 by half its round
 * trip (the most the true offset can be smaller by); of the two middle
 * ones, the smaller. Peers' offsets from us, microseconds. */
static size_t peer_offsets(const jv_repl *r, int64_t *median)
{
    int64_t v[256];
    size_t n = 0;
    uint64_t now = now_ms(r);
    for (const peer *p = r->peers; p && n < 256; p = p->next) {
        if (p->is_self || !p->offset_at_ms ||
            now - p->offset_at_ms > OFFSET_TTL_MS)
            continue;
        int64_t slack = (int64_t)(p->rtt_us / 2), o = p->offset_us;
        o = o > slack ? o - slack : o < -slack ? o + slack : 0;
        size_t at = n++;
        while (at > 0 && v[at - 1] > o) {
            v[at] = v[at - 1];
            at--;
        }
        v[at] = o;
    }
    *median = 0;
    if (n % 2)
        *median = v[n / 2];
    else if (n)
        *median =
            llabs(v[n / 2 - 1]) < llabs(v[n / 2]) ? v[n / 2 - 1] : v[n / 2];
    return n;
}

void jv_repl_clock_get(jv_repl *r, jv_repl_clock *out)
{
    int64_t median;
    memset(out, 0, sizeof(*out));
    out->peers = peer_offsets(r, &median);
    if (!out->peers)
        return;
    int64_t bound = (int64_t)r->node->hlc.max_skew_ms;
    int64_t now = (int64_t)now_ms(r);
    out->offset_ms = -median / 1000;
    /* Our next stamp against their clocks: a clock set right again
     * still signs ahead while the hybrid clock is (it never goes back). */
    int64_t next = (int64_t)jv_hlc_ms(r->node->hlc.last);
    next = next > now ? next : now;
    out->ahead_ms = next - (now + median / 1000);
    out->skewed = llabs(out->offset_ms) > bound || out->ahead_ms > bound;
    if (out->skewed != r->skew_logged) {
        r->skew_logged = out->skewed;
        if (out->skewed)
            jv_warn("repl",
                    "this node's clock is %+" PRId64 " ms off the median "
                    "of %zu peers (its next stamp %+" PRId64 " ms), beyond "
                    "--max-clock-skew %" PRId64 " ms: local writes are "
                    "refused (503 clock_skew) until it is within",
                    out->offset_ms, out->peers, out->ahead_ms, bound);
        else
            jv_info("repl", "clock within --max-clock-skew of the peers "
                            "again: local writes accepted");
    }
}

/* Batches held for their stamp are applied once it is within the bound:
 * a job with no batches at the writer re-checks them. */
static void recheck_held(jv_repl *r)
{
    if (r->rechecking || r->stopping)
        return;
    apply_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return;
    j->r = r;
    j->recheck = true;
    j->wr.apply_flags = JV_APPLY_REQUIRE_TRUST | JV_APPLY_RECHECK;
    j->wr.done = applied_cb;
    j->wr.arg = j;
    r->applying++;
    r->rechecking = true;
    r->host.write(r->host.ctx, &j->wr);
}

/* -- peers ---------------------------------------------------------------- */

static void mark_self(peer *p)
{
    p->is_self = true;
    p->id = p->r->node->kp.pk;
    p->id_known = true;
    p->reachable = true;
    p->caught_up = true;
    p->state = P_IDLE;
    p->again = false;
    p->failures = 0;
    p->last_error[0] = '\0';
    p->trouble = T_NONE;
    p->down_since_ms = 0;
}

static void peer_free(peer *p)
{
    if (p->building)
        p->building->p = NULL; /* its job ends without it */
    if (p->opening)
        p->opening->p = NULL;
    p->r->host.tp_peer_free(p->tp);
    jv_vv_fini(&p->have);
    jv_vv_fini(&p->sent);
    jv_vv_fini(&p->gave);
    jv_vv_fini(&p->known[0]);
    jv_vv_fini(&p->known[1]);
    jv_vv_fini(&p->delivered);
    jv_vv_fini(&p->links);
    jv_free(p->addr);
    jv_free(p);
}

jv_err jv_repl_peer_add(jv_repl *r, const char *addr)
{
    jv_err err = jv_transport_addr_check(addr);
    if (err)
        return err;
    if (find_addr(r, addr))
        return JV_EEXIST;
    peer *p = jv_calloc(1, sizeof(*p));
    if (!p)
        return JV_ENOMEM;
    p->r = r;
    p->addr = jv_strndup(addr, strlen(addr));
    jv_vv_init(&p->have);
    jv_vv_init(&p->sent);
    jv_vv_init(&p->gave);
    jv_vv_init(&p->known[0]);
    jv_vv_init(&p->known[1]);
    jv_vv_init(&p->delivered);
    jv_vv_init(&p->links);
    p->known_since_ms = now_ms(r);
    p->down_since_ms = p->known_since_ms;
    p->rank = rnd(r);
    if (!p->addr ||
        (err = r->host.tp_peer_new(r->tp, addr, p, &p->tp)) != JV_OK) {
        jv_free(p->addr);
        jv_free(p);
        return err ? err : JV_ENOMEM;
    }
    p->next = r->peers;
    r->peers = p;
    r->npeers++;
    if (r->bound[0] && strcmp(addr, r->bound) == 0) {
        mark_self(p);
        jv_info("repl", "peer %s is this node's own address: not dialled",
                addr);
        return JV_OK;
    }
    jv_info("repl", "peer %s added", addr);
    exchange(p, true);
    return JV_OK;
}

jv_err jv_repl_peer_remove(jv_repl *r, const char *addr)
{
    for (peer **pp = &r->peers; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->addr, addr) != 0)
            continue;
        peer *p = *pp;
        *pp = p->next;
        r->npeers--;
        if (r->chain == p)
            r->chain = NULL;
        peer_free(p);
        jv_info("repl", "peer %s removed", addr);
        return JV_OK;
    }
    return JV_ENOTFOUND;
}

bool jv_repl_has_peer(const jv_repl *r, const char *addr)
{
    return find_addr(r, addr) != NULL;
}

void jv_repl_committed(jv_repl *r, const jv_vv *vv, uint64_t own_seq,
                       bool local)
{
    if (r->stopping)
        return;
    /* From the job, not read again here: the loop reads no store. The
     * whole job's vector, not each request's batches: a job may commit
     * several requests' batches, and the pushes the first callback kicks
     * carry them all (raised per request, jarvis-sim's bursts took 1.4 to
     * 2 times as long to converge). */
    /* A vector the writer could not read (it reads it again after its
     * next job, writer.h), or no memory to merge it, leaves ours behind,
     * never ahead, until a later one: meanwhile peers only resend what we
     * hold, which the writer skips. */
    if (own_seq)
        (void)jv_vv_raise(&r->applied, &r->node->origin.pk, own_seq);
    if (vv)
        (void)jv_vv_merge(&r->applied, vv);
    if (local)
        jv_repl_spread(r);
}

void jv_repl_spread(jv_repl *r)
{
    if (r->stopping)
        return;
    note_news(r, &r->node->origin.pk);
    kick(r, NULL, NULL, &r->node->origin.pk, 1);
}

size_t jv_repl_npeers(const jv_repl *r)
{
    return r->npeers;
}

size_t jv_repl_caught_up_n(const jv_repl *r, size_t *of)
{
    size_t n = 0;
    *of = 0;
    for (const peer *p = r->peers; p; p = p->next)
        if (!p->is_self) {
            (*of)++;
            n += p->caught_up;
        }
    return n;
}

bool jv_repl_caught_up(const jv_repl *r)
{
    size_t of;
    return jv_repl_caught_up_n(r, &of) == of;
}

static json_t *time_or_null(uint64_t ms)
{
    char buf[40];
    if (!ms)
        return json_null();
    jv_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

/* One word or three for peers ls's STATE column. */
static const char *peer_state(const peer *p, char *buf, size_t n)
{
    if (p->is_self)
        return "this node";
    if (p->reachable)
        return "reachable";
    if (peer_behind(p, now_ms(p->r)))
        return "behind the horizon";
    switch (p->trouble) {
    case T_KEY:
        return "key mismatch";
    case T_VERSION:
        snprintf(buf, n, "incompatible version %u", p->version);
        return buf;
    case T_NET:
        return p->last_error; /* what connecting gets (on_link) */
    default:
        return "unreachable";
    }
}

/* State, key fingerprint and protocol version of a peer entry. */
static void peer_json_more(const peer *p, json_t *o)
{
    char buf[48];
    json_object_set_new(o, "state",
                        json_string(peer_state(p, buf, sizeof buf)));
    json_object_set_new(
        o, "key", p->key_seen[0] ? json_string(p->key_seen) : json_null());
    json_object_set_new(o, "protocol_version",
                        p->version ? json_integer(p->version) : json_null());
    json_object_set_new(o, "unreachable_since", time_or_null(p->down_since_ms));
    /* Silent past --peer-horizon: it no longer holds compaction back and
     * will need a snapshot when it comes back. */
    const told *t = p->id_known ? told_of(p->r, &p->id) : NULL;
    json_object_set_new(o, "last_heard", time_or_null(t ? t->at_ms : 0));
    json_object_set_new(o, "behind_horizon",
                        json_boolean(peer_behind(p, now_ms(p->r))));
}

json_t *jv_repl_peers_json(jv_repl *r)
{
    json_t *arr = json_array();
    /* Sorted by address, so the listing is stable. */
    peer *sorted[256];
    size_t n = 0;
    for (peer *p = r->peers; p && n < 256; p = p->next)
        sorted[n++] = p;
    for (size_t i = 1; i < n; i++)
        for (size_t k = i;
             k > 0 && strcmp(sorted[k - 1]->addr, sorted[k]->addr) > 0; k--) {
            peer *t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        peer *p = sorted[i];
        char hex[JV_ID_HEX];
        if (p->id_known)
            jv_id_hex(&p->id, hex);
        json_t *o = json_pack(
            "{s:s,s:b,s:o,s:b,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:o}", "address",
            p->addr, "self", p->is_self, "node_id",
            p->id_known ? json_string(hex) : json_null(), "reachable",
            p->reachable, "last_contact", time_or_null(p->last_contact_ms),
            "lacks_from_us",
            p->have_known
                ? json_integer((json_int_t)jv_vv_missing(&p->have, &r->applied))
                : json_null(),
            "we_lack",
            p->have_known
                ? json_integer((json_int_t)jv_vv_missing(&r->applied, &p->have))
                : json_null(),
            "bytes_in", (json_int_t)p->bytes_in, "bytes_out",
            (json_int_t)p->bytes_out, "batches_in", (json_int_t)p->batches_in,
            "batches_out", (json_int_t)p->batches_out, "failures",
            (json_int_t)p->failures, "last_error",
            p->last_error[0] ? json_string(p->last_error) : json_null());
        if (o)
            peer_json_more(p, o);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* "; unreachable: tcp://b:7411 (unreachable, lacks 12 of ours)"
 * for the health report. */
static void name_unreachable(jv_repl *r, char *out, size_t outlen)
{
    size_t at = (size_t)snprintf(out, outlen, "; unreachable:");
    bool first = true;
    for (peer *p = r->peers; p && at < outlen; p = p->next) {
        char buf[48], lag[48] = "";
        if (p->is_self || p->reachable)
            continue;
        if (p->have_known)
            snprintf(lag, sizeof(lag), ", lacks %" PRIu64 " of ours",
                     jv_vv_missing(&p->have, &r->applied));
        at += (size_t)snprintf(out + at, outlen - at, "%s %s (%s%s)",
                               first ? "" : ",", p->addr,
                               peer_state(p, buf, sizeof(buf)), lag);
        first = false;
    }
}

int jv_repl_health(jv_repl *r, char *why, size_t whylen)
{
    size_t up = 0;
    uint64_t we_lack = 0, they_lack = 0;
    size_t total = 0;
    for (peer *p = r->peers; p; p = p->next)
        total += !p->is_self;
    if (!total) {
        snprintf(why, whylen, "no peers configured");
        return 100;
    }
    for (peer *p = r->peers; p; p = p->next) {
        if (p->is_self)
            continue;
        if (p->reachable)
            up++;
        if (p->have_known) {
            uint64_t a = jv_vv_missing(&r->applied, &p->have);
            uint64_t b = jv_vv_missing(&p->have, &r->applied);
            we_lack = a > we_lack ? a : we_lack;
            they_lack = b > they_lack ? b : they_lack;
        }
    }
    size_t at = (size_t)snprintf(why, whylen,
                                 "%zu of %zu peers reachable; we lack %" PRIu64
                                 " operations, a peer lacks up to %" PRIu64,
                                 up, total, we_lack, they_lack);
    jv_repl_delay d;
    jv_repl_delay_get(r, &d);
    if (d.samples && at < whylen)
        at += (size_t)snprintf(why + at, whylen - at,
                               "; delay p50 %" PRIu64 " ms, p99 %" PRIu64 " ms",
                               d.p50_ms, d.p99_ms);
    size_t behind = jv_repl_behind_horizon(r);
    if (behind && at < whylen)
        at += (size_t)snprintf(why + at, whylen - at,
                               "; %zu behind the horizon (silent over "
                               "--peer-horizon: they need a snapshot)",
                               behind);
    if (up < total && at < whylen)
        name_unreachable(r, why + at, whylen - at);
    if (up == total)
        return 100;
    return up ? 60 : 20;
}

uint64_t jv_repl_isolated_ms(const jv_repl *r)
{
    uint64_t since = 0;
    for (const peer *p = r->peers; p; p = p->next) {
        if (p->is_self)
            continue;
        if (p->reachable)
            return 0;
        since = p->down_since_ms > since ? p->down_since_ms : since;
    }
    uint64_t now = now_ms(r);
    return since && now > since ? now - since : 0;
}

void jv_repl_update_metrics(jv_repl *r, const jv_held_counts *held)
{
    size_t up = 0, total = 0;
    for (peer *p = r->peers; p; p = p->next) {
        char l[600];
        if (p->is_self)
            continue;
        total++;
        if (p->reachable)
            up++;
        if (!p->have_known)
            continue;
        snprintf(l, sizeof(l), "peer=\"%s\",direction=\"they_lack\"", p->addr);
        jv_metrics_set(M(r), "jarvis_repl_peer_lag_ops", l,
                       (double)jv_vv_missing(&p->have, &r->applied));
        snprintf(l, sizeof(l), "peer=\"%s\",direction=\"we_lack\"", p->addr);
        jv_metrics_set(M(r), "jarvis_repl_peer_lag_ops", l,
                       (double)jv_vv_missing(&r->applied, &p->have));
    }
    jv_metrics_set(M(r), "jarvis_repl_peers", "state=\"reachable\"",
                   (double)up);
    jv_repl_clock ck;
    jv_repl_clock_get(r, &ck);
    jv_metrics_set(M(r), "jarvis_clock_offset_seconds", NULL,
                   (double)ck.offset_ms / 1000.0);
    jv_metrics_set(M(r), "jarvis_clock_skewed", NULL, ck.skewed ? 1 : 0);
    jv_metrics_set(M(r), "jarvis_clock_peers_measured", NULL, (double)ck.peers);
    if (held) {
        jv_metrics_set(M(r), "jarvis_held_batches_by_reason", "reason=\"gap\"",
                       (double)held->gap);
        jv_metrics_set(M(r), "jarvis_held_batches_by_reason",
                       "reason=\"untrusted\"", (double)held->untrusted);
        jv_metrics_set(M(r), "jarvis_held_batches_by_reason",
                       "reason=\"clock_skew\"", (double)held->clock_skew);
    }
    jv_metrics_set(M(r), "jarvis_repl_peers", "state=\"unreachable\"",
                   (double)(total - up));
    jv_metrics_set(M(r), "jarvis_repl_peers", "state=\"behind_horizon\"",
                   (double)jv_repl_behind_horizon(r));
}

void jv_repl_set_tuning(jv_repl *r, uint64_t fanout, uint64_t interval_ms,
                        uint64_t timeout_ms)
{
    bool sooner = interval_ms < r->o.interval_ms;
    r->o.fanout = fanout;
    r->o.interval_ms = interval_ms;
    r->o.timeout_ms = timeout_ms;
    /* A shorter period applies now, not after the long wait under way. */
    if (sooner && !r->stopping)
        timer_arm(r, interval_ms);
}

void jv_repl_set_keyring(jv_repl *r, const jv_keyring *ring)
{
    bool was_keyed = r->keyed;
    uint8_t was[JV_KEY_ID_LEN];
    if (was_keyed)
        memcpy(was, r->ring.k[0].id, JV_KEY_ID_LEN);
    jv_keyring_wipe(&r->ring);
    r->keyed = ring && ring->n;
    if (r->keyed)
        r->ring = *ring;
    if (was_keyed == r->keyed &&
        (!r->keyed || memcmp(was, r->ring.k[0].id, JV_KEY_ID_LEN) == 0))
        return;
    /* The sending key changed. A request is sealed when it is made, and
     * one still waiting for a connection could go out seconds later,
     * after its receiver has dropped the old key (the last step of a
     * rotation): take those back and send them again under the new key.
     * What a connection has taken is on the wire already. */
    for (peer *p = r->peers; p; p = p->next)
        if (p->state == P_SENDING && !p->recalled &&
            (p->recalled = r->host.tp_recall(p->tp)))
            jv_info("repl",
                    "request to %s not sent yet: sent again under the "
                    "new key",
                    p->addr);
}

/* -- faults --------------------------------------------------------------- */

jv_err jv_repl_block(jv_repl *r, const char *what)
{
    if (r->nblocked == MAX_BLOCKED)
        return JV_ETOOBIG;
    char *c = jv_strndup(what, strlen(what));
    if (!c)
        return JV_ENOMEM;
    r->blocked[r->nblocked++] = c;
    jv_warn("repl", "test fault: traffic with %s blocked", what);
    return JV_OK;
}

void jv_repl_unblock_all(jv_repl *r)
{
    for (size_t i = 0; i < r->nblocked; i++)
        jv_free(r->blocked[i]);
    r->nblocked = 0;
    /* Let the peers blocked so far be retried at once. */
    for (peer *p = r->peers; p; p = p->next)
        p->next_try_ms = 0;
    jv_warn("repl", "test fault: all traffic unblocked");
}

void jv_repl_kill_listener(jv_repl *r)
{
    jv_warn("repl", "test fault: killing the peer listener");
    r->host.tp_kill_listener(r->tp);
}

/* -- start and stop ------------------------------------------------------- */

static jv_err declare(jv_metrics *m)
{
    struct {
        const char *name;
        jv_metric_type type;
        const char *help;
    } fams[] = {
        {"jarvis_repl_batches_total", JV_METRIC_COUNTER,
         "batches received from peers, by result"},
        {"jarvis_repl_refused_messages_total", JV_METRIC_COUNTER,
         "peer messages dropped before their batches were read, by reason"},
        {"jarvis_repl_exchanges_total", JV_METRIC_COUNTER,
         "sync exchanges this node started, by outcome"},
        {"jarvis_repl_bytes_total", JV_METRIC_COUNTER,
         "bytes of peer messages, by direction"},
        {"jarvis_repl_bytes_uncompressed_total", JV_METRIC_COUNTER,
         "bytes of peer messages sent, as they would be without zstd"},
        {"jarvis_repl_listener_restarts_total", JV_METRIC_COUNTER,
         "times the peer listener was found dead and re-created"},
        {"jarvis_repl_peers", JV_METRIC_GAUGE, "peers, by state"},
        {"jarvis_repl_peer_lag_ops", JV_METRIC_GAUGE,
         "operations a peer lacks from us and we from it"},
        {"jarvis_clock_offset_seconds", JV_METRIC_GAUGE,
         "this node's clock minus the median of its peers' (0: not measured)"},
        {"jarvis_clock_skewed", JV_METRIC_GAUGE,
         "1 while the clock is off beyond --max-clock-skew (writes refused)"},
        {"jarvis_clock_peers_measured", JV_METRIC_GAUGE,
         "peers whose clock offset was measured in the last minute"},
        {"jarvis_clock_skew_refused_writes_total", JV_METRIC_COUNTER,
         "local writes refused with 503 clock_skew"},
        {"jarvis_held_batches_by_reason", JV_METRIC_GAUGE,
         "batches held aside, by reason"},
    };
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        jv_err err = jv_metrics_declare(m, fams[i].name, fams[i].type,
                                        fams[i].help, NULL, 0);
        if (err && err != JV_EEXIST)
            return err;
    }
    /* From a busy LAN (milliseconds) to a site whose link was down for
     * a day. */
    static const double delay_buckets[] = {
        0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 600, 3600, 21600, 86400};
    jv_err err = jv_metrics_declare(
        m, "jarvis_repl_delay_seconds", JV_METRIC_HISTOGRAM,
        "from a batch's commit at its origin (its stamp) to its apply here",
        delay_buckets, sizeof(delay_buckets) / sizeof(delay_buckets[0]));
    return err == JV_EEXIST ? JV_OK : err;
}

jv_err jv_repl_start(jv_node *n, const jv_repl_host *host,
                     const jv_repl_opts *o, jv_repl **out, char *bound,
                     size_t boundlen, char *msg, size_t msglen)
{
    jv_transport_opts to;
    jv_err err;
    jv_repl *r = jv_calloc(1, sizeof(*r));
    if (!r) {
        host->fini(host->ctx, NULL, NULL);
        return JV_ENOMEM;
    }
    r->node = n;
    r->host = *host;
    r->o = *o;
    if (o->ring && o->ring->n) {
        r->ring = *o->ring;
        r->keyed = true;
    }
    r->o.ring = NULL;
    r->o.listen = NULL;
    jv_vv_init(&r->applied);
    jv_vv_init(&r->pending);
    jv_vv_init(&r->news_ms);
    jv_buf_init(&r->scratch);
    r->rng = host->seed | 1;
    r->fresh_floor = now_ms(r) * 1000;
    r->started_ms = now_ms(r);
    if ((err = declare(n->metrics)) ||
        (err = jv_vvlinks_new(MAX_SOURCES, &r->links)) ||
        (err = jv_store_vv(n->rst, &r->applied))) {
        snprintf(msg, msglen, "cannot start replication: %s", jv_strerror(err));
        goto fail;
    }
    jv_transport_opts_default(&to);
    to.max_message = o->max_message + JV_SEAL_OVERHEAD;
    jv_transport_cbs cbs = {on_request, on_reply,     on_listener,
                            r,          on_oversized, on_link};
    if ((err = r->host.tp_new(r->host.ctx, &to, &cbs, &r->tp))) {
        snprintf(msg, msglen, "cannot start the peer transport: %s",
                 jv_strerror(err));
        goto fail;
    }
    if (o->listen && (err = r->host.tp_listen(r->tp, o->listen, r->bound,
                                              sizeof(r->bound)))) {
        snprintf(msg, msglen, "cannot listen for peers on %s: %s", o->listen,
                 err == JV_EBUSY ? "address in use" : jv_strerror(err));
        r->host.tp_close(r->tp, NULL, NULL);
        r->tp = NULL;
        goto fail;
    }
    if (bound)
        snprintf(bound, boundlen, "%s", r->bound);
    timer_arm(r, o->interval_ms / 2);
    *out = r;
    return JV_OK;
fail:
    jv_vvlinks_free(r->links);
    jv_vv_fini(&r->pending);
    jv_vv_fini(&r->news_ms);
    jv_vv_fini(&r->applied);
    jv_buf_fini(&r->scratch);
    jv_buf_fini(&r->snap.data);
    jv_buf_fini(&r->snap.vvsec);
    jv_keyring_wipe(&r->ring);
    r->host.fini(r->host.ctx, NULL, NULL);
    jv_free(r);
    return err;
}

static void on_host_closed(void *rp)
{
    jv_repl *r = rp;
    void (*done)(void *) = r->stop_done;
    void *arg = r->stop_arg;
    jv_vvlinks_free(r->links);
    jv_vv_fini(&r->pending);
    jv_vv_fini(&r->news_ms);
    jv_vv_fini(&r->applied);
    jv_buf_fini(&r->scratch);
    jv_buf_fini(&r->snap.data);
    jv_buf_fini(&r->snap.vvsec);
    jv_keyring_wipe(&r->ring);
    for (size_t i = 0; i < MAX_TOLD; i++)
        jv_vv_fini(&r->told[i].vv); /* zeroed by calloc until used */
    for (size_t i = 0; i < r->nblocked; i++)
        jv_free(r->blocked[i]);
    jv_free(r);
    if (done)
        done(arg);
}

static void on_transport_closed(void *arg)
{
    jv_repl *r = arg;
    r->host.fini(r->host.ctx, on_host_closed, r);
}

static void maybe_finish_stop(jv_repl *r)
{
    if (!r->stopping || r->applying || r->serving || r->transport_closed)
        return;
    r->transport_closed = true;
    r->host.tp_close(r->tp, on_transport_closed, r);
}

void jv_repl_stop(jv_repl *r, void (*done)(void *), void *arg)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->stop_done = done;
    r->stop_arg = arg;
    r->host.timer_stop(r->host.ctx);
    r->chain = NULL;
    while (r->peers) {
        peer *p = r->peers;
        r->peers = p->next;
        peer_free(p);
    }
    r->npeers = 0;
    maybe_finish_stop(r);
}

/* -- members (GET /v1/cluster) -------------------------------------------- */

static jv_err collect_name(void *arg, const jv_trust_row *t)
{
    char hex[JV_ID_HEX];
    if (!t->name.n)
        return JV_OK;
    jv_id_hex(&t->node, hex);
    json_object_set_new(arg, hex, json_stringn(t->name.p, t->name.n));
    return JV_OK;
}

static json_t *vv_json(const jv_vv *vv)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < vv->n; i++) {
        char hex[JV_ID_HEX];
        jv_id_hex(&vv->v[i].id, hex);
        json_object_set_new(o, hex, json_integer((json_int_t)vv->v[i].seq));
    }
    return o;
}

/* "converged", "N operations apart" or "unknown" (its vector not told). */
static json_t *sync_text(uint64_t they_lack, uint64_t we_lack, bool known)
{
    if (!known)
        return json_string("unknown");
    if (!they_lack && !we_lack)
        return json_string("converged");
    return json_sprintf("%" PRIu64 " operations apart", they_lack + we_lack);
}

static json_t *member_self(jv_repl *r, json_t *names)
{
    char key[9] = "";
    if (r->keyed)
        jv_keyring_id_hex(&r->ring, 0, key);
    const char *name = r->node->cfg->name;
    json_t *known = json_object_get(names, r->node->self_hex);
    return json_pack("{s:s,s:o,s:s,s:b,s:b,s:s,s:o,s:i,s:i,s:o,s:i,s:s}",
                     "node_id", r->node->self_hex, "name",
                     name && name[0] ? json_string(name)
                     : known         ? json_incref(known)
                                     : json_null(),
                     "address", r->bound, "self", true, "reachable", true,
                     "state", "this node", "version_vector",
                     vv_json(&r->applied), "lacks_from_us", 0, "we_lack", 0,
                     "key", key[0] ? json_string(key) : json_null(),
                     "protocol_version", JV_WIRE_VERSION, "sync", "converged");
}

static json_t *member_peer(jv_repl *r, const peer *p, json_t *names)
{
    char hex[JV_ID_HEX] = "", buf[48];
    uint64_t they = 0, we = 0;
    if (p->id_known)
        jv_id_hex(&p->id, hex);
    if (p->have_known) {
        they = jv_vv_missing(&p->have, &r->applied);
        we = jv_vv_missing(&r->applied, &p->have);
    }
    json_t *name = p->id_known ? json_object_get(names, hex) : NULL;
    json_t *o = json_pack(
        "{s:o,s:o,s:s,s:b,s:b,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "node_id",
        p->id_known ? json_string(hex) : json_null(), "name",
        name ? json_incref(name) : json_null(), "address", p->addr, "self",
        false, "reachable", p->reachable, "state",
        peer_state(p, buf, sizeof(buf)), "version_vector",
        p->have_known ? vv_json(&p->have) : json_null(), "lacks_from_us",
        p->have_known ? json_integer((json_int_t)they) : json_null(), "we_lack",
        p->have_known ? json_integer((json_int_t)we) : json_null(), "key",
        p->key_seen[0] ? json_string(p->key_seen) : json_null(),
        "protocol_version", p->version ? json_integer(p->version) : json_null(),
        "last_contact", time_or_null(p->last_contact_ms), "last_error",
        p->last_error[0] ? json_string(p->last_error) : json_null(), "sync",
        sync_text(they, we, p->have_known));
    return o;
}

json_t *jv_repl_members_json(jv_repl *r)
{
    json_t *names = json_object(), *arr = json_array();
    bool converged = true;
    if (!names || !arr)
        goto fail;
    jv_trustview_each(r->node->trust, collect_name, names);
    json_array_append_new(arr, member_self(r, names));
    for (peer *p = r->peers; p; p = p->next) {
        if (p->is_self)
            continue;
        json_t *m = member_peer(r, p, names);
        if (!m)
            goto fail;
        converged = converged && p->reachable && p->have_known &&
                    !jv_vv_missing(&p->have, &r->applied) &&
                    !jv_vv_missing(&r->applied, &p->have);
        json_array_append_new(arr, m);
    }
    json_decref(names);
    return json_pack("{s:o,s:b}", "members", arr, "converged", converged);
fail:
    json_decref(names);
    json_decref(arr);
    return NULL;
}
