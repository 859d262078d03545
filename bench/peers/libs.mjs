// bench/peers, the libraries' side: one step of one library per process,
// so that the receiving replica's resident memory is its own.
//
//   node libs.mjs make  LIB SETS DIR   replica A takes the workload (one
//        library transaction per workload transaction) and writes what a
//        peer would be sent: DIR/LIB.state (the whole document) and
//        DIR/LIB.updates (every transaction's update, length-prefixed)
//   node libs.mjs apply LIB MODE DIR   a fresh replica applies DIR/LIB.state
//        (MODE state) or every update in order (MODE incremental)
//
// Each prints one JSON line. Times cover the library calls only (encoding
// and applying, in memory), not the reading of the files. LIB: yjs,
// automerge. Neither library signs, verifies or writes to disk.
import * as fs from "node:fs";
import * as Y from "yjs";
import * as AM from "@automerge/automerge";
import { workload } from "./workload.mjs";

const now = () => Number(process.hrtime.bigint()) / 1e6;

function writeUpdates(path, updates) {
    let total = 0;
    for (const u of updates) total += 4 + u.length;
    const buf = Buffer.alloc(total);
    let off = 0;
    for (const u of updates) {
        buf.writeUInt32LE(u.length, off);
        off += 4;
        buf.set(u, off);
        off += u.length;
    }
    fs.writeFileSync(path, buf);
}

function readUpdates(path) {
    const buf = fs.readFileSync(path);
    const out = [];
    for (let off = 0; off < buf.length;) {
        const n = buf.readUInt32LE(off);
        off += 4;
        out.push(new Uint8Array(buf.buffer, buf.byteOffset + off, n));
        off += n;
    }
    return out;
}

const make = {
    yjs(sets) {
        const doc = new Y.Doc();
        const map = doc.getMap("m");
        const updates = [];
        doc.on("update", (u) => updates.push(u));
        const t0 = now();
        for (const txn of workload(sets))
            doc.transact(() => {
                for (const [k, v] of txn) map.set(k, v);
            });
        const t1 = now();
        const state = Y.encodeStateAsUpdate(doc);
        const t2 = now();
        return { updates, state, commit_ms: t1 - t0, encode_ms: t2 - t1,
                 keys: map.size };
    },
    automerge(sets) {
        let doc = AM.init();
        const updates = [];
        const t0 = now();
        for (const txn of workload(sets)) {
            doc = AM.change(doc, (d) => {
                for (const [k, v] of txn) d[k] = v;
            });
            updates.push(AM.getLastLocalChange(doc));
        }
        const t1 = now();
        const state = AM.save(doc);
        const t2 = now();
        return { updates, state, commit_ms: t1 - t0, encode_ms: t2 - t1,
                 keys: Object.keys(doc).length };
    },
};

const apply = {
    yjs(mode, input) {
        const doc = new Y.Doc();
        const t0 = now();
        if (mode === "state") Y.applyUpdate(doc, input);
        else for (const u of input) Y.applyUpdate(doc, u);
        const t1 = now();
        return { ms: t1 - t0, keys: doc.getMap("m").size };
    },
    automerge(mode, input) {
        const t0 = now();
        let doc;
        if (mode === "state") doc = AM.load(input);
        else {
            doc = AM.init();
            for (const u of input) [doc] = AM.applyChanges(doc, [u]);
        }
        const t1 = now();
        return { ms: t1 - t0, keys: Object.keys(doc).length };
    },
};

const [step, lib, a, b] = process.argv.slice(2);
if (step === "make" && make[lib]) {
    const sets = Number(a);
    const r = make[lib](sets);
    writeUpdates(`${b}/${lib}.updates`, r.updates);
    fs.writeFileSync(`${b}/${lib}.state`, r.state);
    const upd = r.updates.reduce((s, u) => s + u.length, 0);
    console.log(JSON.stringify({
        lib, step, sets, keys: r.keys, commit_ms: r.commit_ms,
        encode_ms: r.encode_ms, state_bytes: r.state.length,
        update_bytes: upd,
        max_rss: process.resourceUsage().maxRSS * 1024 }));
} else if (step === "apply" && apply[lib] && (a === "state" || a === "incremental")) {
    const input = a === "state" ? fs.readFileSync(`${b}/${lib}.state`)
                                : readUpdates(`${b}/${lib}.updates`);
    const r = apply[lib](a, input);
    console.log(JSON.stringify({
        lib, step, mode: a, keys: r.keys, apply_ms: r.ms,
        max_rss: process.resourceUsage().maxRSS * 1024 }));
} else {
    console.error("usage: libs.mjs make LIB SETS DIR | apply LIB state|incremental DIR");
    process.exit(2);
}
