// The timing half of the open-latency probe: bench/probe.ts builds the trials and runs this inside
// the client namespace; this sends each trial's trigger and times the first answer of the port.
//
//   syn-probe TARGET PROTECTED_PORT TIMEOUT_MS < trials
//   one trial per input line:   K SOURCE PORT[,PORT...]      a knock: one TCP SYN to each port, in order
//                               S SOURCE UDP_PORT HEX        SPA: one datagram, the payload in hex
//   one output line per trial:  the latency in ms (%.3f), or "fail" after TIMEOUT_MS
//
// Why raw SYNs and not connect(): a connect attempt is a socket, a file descriptor and an event-loop
// round in Node; at one every 0.2 ms that load on the 2 shared cores showed up in the very figure it
// measured (capture → kernel p99 of the daemon 1.76 ms under the Node probe against 0.92 ms for the
// real knock client, whose trials have no attempts running beside them). Here an attempt is one
// sendto() of a 20-byte TCP header on a raw socket bound to the trial's source, and the answer is
// read from the same socket: the first SYN-ACK from PROTECTED_PORT means the server's firewall let a
// SYN through, which is what "open" is. The client's kernel answers that SYN-ACK with a RST (no
// socket owns the port), so nothing is left half-open on the server.
//
// t0 is taken right after the trigger's last packet left; attempts start at once, every
// INTERVAL_NS (slower once a trial runs long, as in intervalAfter), and the latency ends when the
// SYN-ACK is read in user space: late by at most one interval plus the wakeup.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 8192
#define MAX_KNOCK_PORTS 32
#define PAUSE_BETWEEN_TRIALS_NS 5000000L // as the Node probe: 5 ms, so trials do not overlap
// Source ports of the attempts, apart from the knocks' (32768+): a SYN-ACK to one of these answers an attempt.
#define ATTEMPT_PORT_MIN 10000
#define ATTEMPT_PORT_MAX 29999

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000L + t.tv_nsec;
}

// 0.1 ms for the first 20 ms, 1 ms to 500 ms, then 10 ms: a slow open is still seen by a fresh SYN.
static int64_t interval_after(int64_t elapsed_ns) {
  return elapsed_ns < 20000000L ? 100000L : elapsed_ns < 500000000L ? 1000000L : 10000000L;
}

static uint16_t checksum(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

// One SYN from src:sport to dst:dport; the kernel adds the IP header (the socket is bound to src).
static int send_syn(int raw, struct in_addr src, struct in_addr dst, uint16_t sport, uint16_t dport) {
  struct tcphdr tcp;
  memset(&tcp, 0, sizeof tcp);
  tcp.source = htons(sport);
  tcp.dest = htons(dport);
  tcp.seq = htonl((uint32_t)random());
  tcp.doff = 5;
  tcp.syn = 1;
  tcp.window = htons(64240);
  // The pseudo-header: source, destination, protocol, TCP length.
  uint32_t s = ntohl(src.s_addr), d = ntohl(dst.s_addr);
  uint32_t sum = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + IPPROTO_TCP + sizeof tcp;
  tcp.check = htons(checksum(&tcp, sizeof tcp, sum));
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  return sendto(raw, &tcp, sizeof tcp, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sizeof tcp ? 0 : -1;
}

// Whether one packet read from the raw socket is a SYN-ACK from dst:port to one of the attempts.
static int is_syn_ack(const uint8_t *buf, ssize_t n, struct in_addr dst, uint16_t port) {
  if (n < (ssize_t)sizeof(struct iphdr)) return 0;
  const struct iphdr *ip = (const struct iphdr *)buf;
  size_t ihl = (size_t)ip->ihl * 4;
  if (ip->protocol != IPPROTO_TCP || ip->saddr != dst.s_addr || n < (ssize_t)(ihl + sizeof(struct tcphdr))) return 0;
  const struct tcphdr *tcp = (const struct tcphdr *)(buf + ihl);
  uint16_t to = ntohs(tcp->dest);
  return ntohs(tcp->source) == port && tcp->syn && tcp->ack && to >= ATTEMPT_PORT_MIN && to <= ATTEMPT_PORT_MAX;
}

static int hex_decode(const char *hex, uint8_t *out, size_t max) {
  size_t n = strlen(hex);
  if (n % 2 || n / 2 > max) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return (int)(n / 2);
}

static int send_udp(struct in_addr src, struct in_addr dst, uint16_t port, const uint8_t *data, size_t len) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = src};
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst, .sin_port = htons(port)};
  int rc = bind(fd, (struct sockaddr *)&from, sizeof from) == 0 &&
                   sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len
               ? 0
               : -1;
  close(fd);
  return rc;
}

// One trial: the trigger from `line`, then SYNs until the answer. The latency in ns, or -1.
static int64_t trial(char *line, struct in_addr dst, uint16_t protected_port, int64_t timeout_ns, uint16_t *next_sport) {
  char *kind = strtok(line, " \n"), *source = strtok(NULL, " \n"), *rest = strtok(NULL, " \n");
  struct in_addr src;
  if (!kind || !source || !rest || inet_pton(AF_INET, source, &src) != 1) {
    fprintf(stderr, "syn-probe: bad trial line\n");
    exit(2);
  }
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
  struct sockaddr_in bound = {.sin_family = AF_INET, .sin_addr = src};
  if (raw < 0 || bind(raw, (struct sockaddr *)&bound, sizeof bound) != 0) {
    fprintf(stderr, "syn-probe: raw socket on %s: %s\n", source, strerror(errno));
    exit(2);
  }
  int sent = 0;
  if (kind[0] == 'K') {
    for (char *p = strtok(rest, ","); p; p = strtok(NULL, ","))
      sent |= send_syn(raw, src, dst, (uint16_t)(32768 + random() % 28000), (uint16_t)atoi(p));
  } else {
    char *hex = strtok(NULL, " \n");
    static uint8_t payload[MAX_LINE / 2];
    int len = hex ? hex_decode(hex, payload, sizeof payload) : -1;
    if (len < 0) {
      fprintf(stderr, "syn-probe: bad SPA payload\n");
      exit(2);
    }
    sent = send_udp(src, dst, (uint16_t)atoi(rest), payload, (size_t)len);
  }
  if (sent != 0) {
    fprintf(stderr, "syn-probe: trigger from %s: %s\n", source, strerror(errno));
    exit(2);
  }
  int64_t t0 = now_ns(), next = t0, result = -1;
  struct pollfd pfd = {.fd = raw, .events = POLLIN};
  uint8_t buf[2048];
  for (;;) {
    int64_t t = now_ns();
    if (t - t0 > timeout_ns) break;
    if (t >= next) {
      *next_sport = (uint16_t)(*next_sport >= ATTEMPT_PORT_MAX ? ATTEMPT_PORT_MIN : *next_sport + 1);
      send_syn(raw, src, dst, *next_sport, protected_port);
      next = t + interval_after(t - t0);
    }
    int64_t wait = next - now_ns();
    struct timespec ts = {.tv_sec = 0, .tv_nsec = wait > 0 ? wait : 0};
    if (ppoll(&pfd, 1, &ts, NULL) <= 0) continue;
    ssize_t n;
    while ((n = recv(raw, buf, sizeof buf, MSG_DONTWAIT)) > 0)
      if (result < 0 && is_syn_ack(buf, n, dst, protected_port)) result = now_ns() - t0;
    if (result >= 0) break;
  }
  close(raw);
  return result;
}

int main(int argc, char **argv) {
  struct in_addr dst;
  if (argc != 4 || inet_pton(AF_INET, argv[1], &dst) != 1) {
    fprintf(stderr, "usage: syn-probe TARGET PROTECTED_PORT TIMEOUT_MS < trials\n");
    return 2;
  }
  uint16_t port = (uint16_t)atoi(argv[2]), sport = ATTEMPT_PORT_MIN;
  int64_t timeout_ns = (int64_t)atol(argv[3]) * 1000000L;
  srandom((unsigned)now_ns());
  static char line[MAX_LINE];
  while (fgets(line, sizeof line, stdin)) {
    int64_t ns = trial(line, dst, port, timeout_ns, &sport);
    if (ns < 0)
      printf("fail\n");
    else
      printf("%.3f\n", ns / 1e6);
    fflush(stdout);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = PAUSE_BETWEEN_TRIALS_NS};
    nanosleep(&pause, NULL);
  }
  return 0;
}
