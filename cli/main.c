/*
 * main.c - jarvisctl, the admin CLI of a Jarvis node. Everything is in
 * jv_cli (cli.c and the cmd_*.c files) so that tests can link it.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return jvc_main(argc, argv);
}
