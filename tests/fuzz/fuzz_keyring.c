/*
 * fuzz_keyring.c - cluster key files and sealed frames. The first byte
 * picks: key file text, or a frame opened by a two-key ring and by a node
 * without keys.
 */
#include <string.h>

#include "fuzz.h"
#include "keyring.h"

static const char ring_text[] =
    "# test ring\n"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_keyring ring, parsed;
    jv_buf out;
    char msg[128];
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        jv_err err = jv_keyring_parse((const char *)data + 1, size - 1, &parsed,
                                      msg, sizeof(msg));
        if (err == JV_OK)
            JV_FUZZ_CHECK(parsed.n >= 1 && parsed.n <= JV_KEYRING_MAX);
        jv_keyring_wipe(&parsed);
        return 0;
    }
    JV_FUZZ_CHECK(jv_keyring_parse(ring_text, sizeof(ring_text) - 1, &ring, msg,
                                   sizeof(msg)) == JV_OK);
    jv_buf_init(&out);
    if (jv_open(&ring, data + 1, size - 1, &out) == JV_OK)
        JV_FUZZ_CHECK(out.len + JV_SEAL_OVERHEAD == size - 1);
    if (jv_open(NULL, data + 1, size - 1, &out) == JV_OK)
        JV_FUZZ_CHECK(out.len + 1 == size - 1);
    jv_buf_fini(&out);
    jv_keyring_wipe(&ring);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    jv_keyring ring;
    char msg[128];
    static const uint8_t hello[] = "a message between peers";
    size_t n = 0;
    if (max < 4 || jv_keyring_parse(ring_text, sizeof(ring_text) - 1, &ring,
                                    msg, sizeof(msg)) != JV_OK)
        return 0;
    uint8_t file = 1, frame = 0;
    jv_buf_append(&seeds[n], &file, 1);
    jv_buf_append(&seeds[n++], ring_text, sizeof(ring_text) - 1);
    jv_buf_append(&seeds[n], &frame, 1);
    jv_seal(&ring, hello, sizeof(hello), &seeds[n++]);
    jv_buf_append(&seeds[n], &frame, 1);
    jv_seal(NULL, hello, sizeof(hello), &seeds[n++]);
    jv_keyring_wipe(&ring);
    return n;
}
