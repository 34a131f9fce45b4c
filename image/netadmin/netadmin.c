/*
 * netadmin: the one thing the VIP hook may do with CAP_NET_ADMIN.
 *
 *   netadmin addr add|del ADDRESS/PREFIX dev IFACE
 *
 * The image installs this program with the file capability cap_net_admin (it only works in a
 * container given NET_ADMIN).  It refuses every other command line, and any address or
 * interface other than the container's configured VIP: VIP_ADDRESS and VIP_INTERFACE (eth0 by
 * default) as found in the environment of process 1, which was set when the container started.
 * It then runs ip with CAP_NET_ADMIN as an ambient capability and an empty environment.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IP_PROGRAM
#define IP_PROGRAM "/usr/sbin/ip"
#endif

static int refuse(const char *why) {
    fprintf(stderr, "netadmin: refused: %s (only: addr add|del <VIP_ADDRESS>/<prefix> dev <VIP_INTERFACE>)\n", why);
    return 64;
}

/* VAR's value in process 1's environment, copied into out; 0 when absent. */
static int pid1_env(const char *var, char *out, size_t size) {
    static char buf[65536];
    static ssize_t len = -1;
    if (len < 0) {
        int fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len < 0)
            len = 0;
        buf[len] = '\0';
    }
    size_t n = strlen(var);
    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(buf + i) + 1) {
        if (strncmp(buf + i, var, n) == 0 && buf[i + n] == '=') {
            snprintf(out, size, "%s", buf + i + n + 1);
            return 1;
        }
    }
    return 0;
}

/* Parse "host[/prefix]" into family + binary address; prefix checked when required. */
static int parse(const char *text, int need_prefix, int *family, unsigned char addr[16]) {
    char host[64];
    const char *slash = strchr(text, '/');
    size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
    if (hlen == 0 || hlen >= sizeof(host))
        return 0;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, host, addr) == 1)
        *family = AF_INET6;
    else
        return 0;
    if (!slash)
        return !need_prefix;
    const char *p = slash + 1;
    if (*p == '\0' || strlen(p) > 3)
        return 0;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return 0;
    return atoi(p) <= (*family == AF_INET ? 32 : 128);
}

int main(int argc, char **argv) {
    if (argc != 6 || strcmp(argv[1], "addr") != 0 || strcmp(argv[4], "dev") != 0)
        return refuse("not an 'addr ... dev ...' command");
    if (strcmp(argv[2], "add") != 0 && strcmp(argv[2], "del") != 0)
        return refuse("only add and del");
    char vip[128], iface[64] = "eth0";
    if (!pid1_env("VIP_ADDRESS", vip, sizeof(vip)) || vip[0] == '\0')
        return refuse("no VIP_ADDRESS in the container's environment");
    pid1_env("VIP_INTERFACE", iface, sizeof(iface));
    if (iface[0] == '\0')
        snprintf(iface, sizeof(iface), "eth0");
    int fam_arg, fam_vip;
    unsigned char a[16] = {0}, v[16] = {0};
    if (!parse(argv[3], 1, &fam_arg, a))
        return refuse("the address is not ADDRESS/PREFIX");
    if (!parse(vip, 0, &fam_vip, v) || fam_arg != fam_vip || memcmp(a, v, 16) != 0)
        return refuse("the address is not the configured VIP_ADDRESS");
    if (strcmp(argv[5], iface) != 0)
        return refuse("the interface is not the configured VIP_INTERFACE");

    /* CAP_NET_ADMIN (permitted, from the file capability) -> inheritable -> ambient, so ip keeps it */
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &head, data) != 0)
        return perror("netadmin: capget"), 1;
    if (!(data[0].permitted & (1u << CAP_NET_ADMIN))) {
        fprintf(stderr, "netadmin: Operation not permitted: the container lacks NET_ADMIN\n");
        return 1;
    }
    data[0].inheritable |= 1u << CAP_NET_ADMIN;
    if (syscall(SYS_capset, &head, data) != 0)
        return perror("netadmin: capset"), 1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0)
        return perror("netadmin: ambient capability"), 1;
    char *const args[] = {"ip", "addr", argv[2], argv[3], "dev", argv[5], NULL};
    char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};
    execve(IP_PROGRAM, args, env);
    perror("netadmin: exec ip");
    return 1;
}
