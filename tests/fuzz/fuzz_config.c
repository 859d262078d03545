/*
 * fuzz_config.c - jarvisd's config file: any bytes give a clear error or a
 * loaded configuration, never a crash.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], msg[512] = "";
    jv_config c;
    jv_config_action action;
    int fd = memfd_create("jarvis-config", MFD_CLOEXEC);
    JV_FUZZ_CHECK(fd >= 0);
    JV_FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    char *argv[] = {"jarvisd", "--config", path, NULL};
    FILE *devnull = fopen("/dev/null", "w");
    jv_err err =
        jv_config_load(&c, 3, argv, devnull, &action, msg, sizeof(msg));
    if (err)
        JV_FUZZ_CHECK(msg[0] != '\0');
    else
        JV_FUZZ_CHECK(action == JV_CONFIG_RUN && c.api_listen && c.data_dir);
    jv_config_fini(&c);
    fclose(devnull);
    close(fd);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    static const char text[] =
        "# a node\n"
        "data-dir = /var/lib/jarvis\n"
        "api-listen = \"127.0.0.1:7410\"\n"
        "listen = tcp://0.0.0.0:7411\n"
        "peer = tcp://bravo:7411\n"
        "peer = tcp://charlie:7411\n"
        "trust = "
        "1f04da131007ab839bb3edfd5cdcab2e8dfba4d0724211bc945af34721bbdb11\n"
        "log-level = debug\n"
        "sync = full\n"
        "max-body = 2M\n"
        "insecure = no\n";
    if (max < 1)
        return 0;
    jv_buf_append(&seeds[0], text, sizeof(text) - 1);
    return 1;
}
