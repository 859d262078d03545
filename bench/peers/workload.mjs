// The workload every side of bench/peers runs: SETS sets over KEYS keys in
// transactions of TXN sets. Keys and values come from xorshift32 seeded
// with 1, so that peers_bench.c (the Jarvis side) makes the same ones:
// key "key-" + 5-digit (r % KEYS), value 16 hex digits of two more draws.
export const KEYS = 10000;
export const TXN = 1000;

export function* workload(sets) {
    let x = 1;
    const next = () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x;
    };
    const hex = (v) => v.toString(16).padStart(8, "0");
    for (let t = 0; t < sets / TXN; t++) {
        const txn = [];
        for (let j = 0; j < TXN; j++) {
            const k = "key-" + String(next() % KEYS).padStart(5, "0");
            txn.push([k, hex(next()) + hex(next())]);
        }
        yield txn;
    }
}
