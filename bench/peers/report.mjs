// bench/peers: prints the side-by-side table from the JSON lines of
// libs.mjs and peers_bench (file given as argument), with the goals.
import * as fs from "node:fs";

const rows = fs.readFileSync(process.argv[2], "utf8").split("\n")
    .filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
const find = (lib, step, mode) => rows.find((r) => r.lib === lib &&
    (step === undefined || r.step === step) && (mode === undefined || r.mode === mode));
const jv = find("jarvis");
if (!jv) throw new Error("no Jarvis figures");
const sets = jv.sets;
const lib = (name) => {
    const mk = find(name, "make"), st = find(name, "apply", "state"),
        inc = find(name, "apply", "incremental");
    if (!mk || !st || !inc || mk.sets !== sets) throw new Error(`no ${name} figures`);
    return {
        commit: sets / (mk.commit_ms / 1000),
        state: sets / (st.apply_ms / 1000),
        inc: sets / (inc.apply_ms / 1000),
        wire_state: mk.state_bytes / sets,
        wire_inc: mk.update_bytes / sets,
        stored: mk.state_bytes / sets,
        rss: Math.max(st.max_rss, inc.max_rss) / 1048576,
    };
};
const y = lib("yjs"), a = lib("automerge");
const j = {
    commit: jv.commit_per_s, state: jv.state_per_s, inc: jv.inc_per_cpu_s,
    wire_state: jv.state_wire, wire_inc: jv.inc_wire, stored: jv.log,
    rss: jv.rss / 1048576,
};
const f = (v, d = 0) => v.toLocaleString("en-US", { maximumFractionDigits: d,
    minimumFractionDigits: d });
const line = (name, key, d) =>
    console.log(`| ${name} | ${f(y[key], d)} | ${f(a[key], d)} | ${f(j[key], d)} |`);

console.log(`\n${f(sets)} sets over 10,000 keys, transactions of 1,000\n`);
console.log("| | Yjs | Automerge | Jarvis |");
console.log("| --- | ---: | ---: | ---: |");
line("local commit (sets/s)", "commit");
line("apply as one state (sets/s)", "state");
line("apply incrementally (sets/s of CPU)", "inc");
line("wire bytes per set, one state", "wire_state", 1);
line("wire bytes per set, incremental", "wire_inc", 1);
line("stored bytes per set (history kept)", "stored", 1);
line("receiver resident memory (MiB)", "rss", 1);
console.log(`
Yjs and Automerge run in memory, in one node process per step, unsigned
and not durable; their "stored" figure is the saved document (Yjs keeps no
history; Automerge's save holds it all). Jarvis runs three jarvisd
processes over loopback: local commit is over HTTP; every batch is signed
by its origin, verified by each receiver and committed to SQLite before
it counts; "one state" is a node joining after the writes; its stored
figure is the retained log's bodies (database ${f(jv.disk, 1)} bytes per set
in all, state and indexes included); each set also writes an audit entry.
`);
const goal = (text, ok) => console.log(`- ${ok ? "met" : "MISSED"}: ${text}`);
goal(`verified durable apply >= Yjs in memory (one state ${f(j.state)} vs ${f(y.state)}, ` +
     `incremental ${f(j.inc)} vs ${f(y.inc)})`, j.state >= y.state && j.inc >= y.inc);
goal(`wire bytes per set <= Yjs (one state ${f(j.wire_state, 1)} vs ${f(y.wire_state, 1)}, ` +
     `incremental ${f(j.wire_inc, 1)} vs ${f(y.wire_inc, 1)})`,
     j.wire_state <= y.wire_state && j.wire_inc <= y.wire_inc);
goal(`retained log within 10x of Automerge's saved history (${f(j.stored, 1)} vs ` +
     `${f(a.stored, 1)} bytes per set: ${f(j.stored / a.stored, 1)}x)`, j.stored <= 10 * a.stored);
goal(`resident memory far below both (${f(j.rss, 1)} MiB vs ${f(y.rss, 1)} and ${f(a.rss, 1)})`,
     j.rss * 4 <= Math.min(y.rss, a.rss));
