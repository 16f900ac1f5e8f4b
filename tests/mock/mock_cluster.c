/*
 * mock_cluster.c - run librdkafka's in-process mock Kafka cluster as a child
 * process that ferrokafka's Rust tests can drive over a pipe.
 *
 * Build (librdkafka-dev 2.0.2):
 *   gcc -O2 -Wall -Wextra -Werror -o /tmp/mock_cluster \
 *       tests/mock/mock_cluster.c -lrdkafka
 *
 * Usage:
 *   mock_cluster [--brokers N] [--debug CONTEXTS]
 *
 *   --brokers N      number of mock brokers, ids 1..N (default 1, max 64)
 *   --debug CTXS     librdkafka "debug" contexts, e.g. "mock" or
 *                    "mock,protocol"; the trace goes to stderr
 *
 * Wire protocol
 * -------------
 * stdout carries the protocol and nothing else; every librdkafka log line
 * goes to stderr.
 *
 * On startup the program writes exactly one line
 *
 *   BOOTSTRAP 127.0.0.1:PORT1,127.0.0.1:PORT2,...
 *
 * and then reads commands from stdin, one per line. Tokens are separated by
 * blanks; a trailing "\r" is ignored. Each input line, including a blank or
 * malformed one, gets exactly one reply line:
 *
 *   OK                 the command was applied (the change is visible to
 *                      clients from then on)
 *   OK <value>         the same, for commands that return a value
 *   ERR <message>      nothing was changed; the message is free text
 *
 * Argument forms:
 *   BROKERID   decimal int32. Broker ids are 1..N. Where noted, -1 means
 *              "all brokers" or "no broker".
 *   APIKEY     a decimal Kafka ApiKey (0 = Produce, 1 = Fetch, ...) or one of
 *              these names (case-insensitive): Produce Fetch ListOffsets
 *              Metadata OffsetCommit OffsetFetch FindCoordinator JoinGroup
 *              Heartbeat LeaveGroup SyncGroup ApiVersions InitProducerId
 *              AddPartitionsToTxn AddOffsetsToTxn EndTxn TxnOffsetCommit
 *   ERRCODE    a decimal int16 Kafka error code (e.g. 6 NOT_LEADER...,
 *              -195 for librdkafka's _TRANSPORT = drop the connection) or a
 *              librdkafka error name without the RD_KAFKA_RESP_ERR_ prefix,
 *              e.g. NOT_LEADER_FOR_PARTITION or _TRANSPORT (case-insensitive)
 *   COUNT      1..100000, default 1
 *   MS         0..3600000 milliseconds
 *
 * Commands:
 *   topic NAME PARTITIONS REPLICATION
 *       Create a topic. (The 2.0.2 mock ignores REPLICATION: the replicas
 *       are always the first min(3, N) brokers, and each partition's leader
 *       is picked at random among them.)
 *   leader TOPIC PARTITION BROKERID     BROKERID -1 = no leader
 *   follower TOPIC PARTITION BROKERID   preferred read replica (KIP-392);
 *                                       the broker does not have to exist;
 *                                       -1: none. The mock's leader names it
 *                                       (and sends no data) whether it is up
 *                                       or behind, where Kafka names only live,
 *                                       caught-up replicas
 *       (leader/follower create TOPIC with PARTITION+1 partitions if it does
 *       not exist yet)
 *   down BROKERID | up BROKERID         BROKERID -1 = all brokers. "down"
 *       closes the connections and refuses new ones; leadership is NOT moved.
 *   rtt BROKERID MS                     delay every response; -1 = all
 *   error APIKEY ERRCODE [COUNT]
 *       The next COUNT requests of that ApiKey, on any broker, fail with
 *       ERRCODE.
 *   broker_error BROKERID APIKEY ERRCODE [COUNT [MS]]
 *       Like "error", limited to one broker, and each of those responses is
 *       also held back MS milliseconds (default 0). ERRCODE 0 with MS > 0
 *       just delays. A broker's own errors are used before the cluster-wide
 *       ones. 2.0.2 quirk: once a broker has had its own queue for an
 *       ApiKey, that broker ignores the cluster-wide "error" queue for that
 *       ApiKey for good, even after its own queue has run empty.
 *   broker_error_count BROKERID APIKEY  -> "OK <n>": how many queued
 *       per-broker errors have not been used yet
 *   clear_errors APIKEY
 *       Drop the queued cluster-wide errors for APIKEY (the per-broker
 *       queues are not touched).
 *   coordinator group|transaction KEY BROKERID
 *       Pin the group/transaction coordinator. BROKERID must be 1..N,
 *       because FindCoordinator pointing at a missing broker makes the
 *       2.0.2 mock abort.
 *   topic_error TOPIC ERRCODE
 *       Topic-level error in Metadata and AddPartitionsToTxn responses
 *       (0 clears it). Creates the topic (default 4 partitions) if missing.
 *       Use this for Metadata errors: "error 3 ..." does nothing in 2.0.2,
 *       because the Metadata handler never looks at the error queue.
 *   rack BROKERID RACK                  rack shown in Metadata; -1 = all
 *   wmarks TOPIC PARTITION LO HI
 *       Low/high watermarks the follower reports (-1 = use the leader's)
 *   topic_delete TOPIC                  (librdkafka >= 2.15 only) delete a
 *       topic; clients see UNKNOWN_TOPIC_OR_PARTITION from then on
 *   track start|stop|clear              (>= 2.15) request tracking: start or
 *       stop recording every request the brokers receive, or forget them
 *   requests [APIKEY]                   (>= 2.15) -> "OK <n> <key>=<count>...":
 *       how many requests were tracked, and per ApiKey (or only APIKEY's)
 *   broker_requests APIKEY              (>= 2.15) -> "OK <n> <broker>=<count>...":
 *       how many tracked requests of APIKEY each broker received
 *   cgrp_consumer SESSION_MS HEARTBEAT_MS  (>= 2.15) KIP-848 groups:
 *       group.consumer.session.timeout.ms and .heartbeat.interval.ms
 *   apiversion APIKEY MIN MAX
 *       Narrow the advertised version range of an ApiKey. MIN MAX = -1 -1
 *       turns the API off. MAX may not exceed what the 2.0.2 mock
 *       implements.
 *   ping                                -> OK
 *   quit                                -> OK, then tear down and exit 0
 *
 * The program also exits when stdin reaches EOF, on SIGTERM/SIGINT/SIGHUP,
 * and (Linux) when the parent dies, via PR_SET_PDEATHSIG. Note that the
 * kernel's "parent" here is the parent *thread* that spawned us: if a Rust
 * test spawns the mock from a thread that then exits, the mock is killed.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS    64
#define MAX_PARTITIONS 10000
#define MAX_COUNT      100000
#define MAX_MS         3600000
#define MAX_ARGS       8
#define REPLY_MAX      4096

static rd_kafka_mock_cluster_t *mcluster;
static int broker_cnt = 1;

/* ApiKeys the mock has handlers for, with the highest version each handler
 * implements: librdkafka 2.16's mock (its ApiVersions answer), else 2.0.2's
 * (rdkafka_mock_handlers.c at v2.0.2). */
static const struct {
        int16_t key;
        const char *name;
        int16_t max_version;
} api_keys[] = {
#if RD_KAFKA_VERSION >= 0x020f0000
    {0, "Produce", 10},          {1, "Fetch", 16},
    {2, "ListOffsets", 7},       {3, "Metadata", 13},
    {8, "OffsetCommit", 9},      {9, "OffsetFetch", 6},
    {10, "FindCoordinator", 3},  {11, "JoinGroup", 6},
    {12, "Heartbeat", 5},        {13, "LeaveGroup", 4},
    {14, "SyncGroup", 4},        {18, "ApiVersions", 2},
    {22, "InitProducerId", 4},   {23, "OffsetForLeaderEpoch", 2},
    {24, "AddPartitionsToTxn", 1}, {25, "AddOffsetsToTxn", 1},
    {26, "EndTxn", 1},           {28, "TxnOffsetCommit", 3},
    {68, "ConsumerGroupHeartbeat", 1},
#else
    {0, "Produce", 7},           {1, "Fetch", 11},
    {2, "ListOffsets", 5},       {3, "Metadata", 2},
    {8, "OffsetCommit", 7},      {9, "OffsetFetch", 5},
    {10, "FindCoordinator", 2},  {11, "JoinGroup", 5},
    {12, "Heartbeat", 3},        {13, "LeaveGroup", 1},
    {14, "SyncGroup", 3},        {18, "ApiVersions", 2},
    {22, "InitProducerId", 4},   {24, "AddPartitionsToTxn", 1},
    {25, "AddOffsetsToTxn", 1},  {26, "EndTxn", 1},
    {28, "TxnOffsetCommit", 2},
#endif
};
#define API_KEYS_CNT ((int)(sizeof(api_keys) / sizeof(api_keys[0])))


static void on_signal(int sig) {
        (void)sig;
        _exit(0);
}

static void log_to_stderr(const rd_kafka_t *rk,
                          int level,
                          const char *fac,
                          const char *buf) {
        fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac,
                rk ? rd_kafka_name(rk) : "", buf);
}

/* Parse a whole token as a decimal integer within [min, max]. */
static int parse_long(const char *s, long min, long max, long *out) {
        char *end;
        long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (end == s || *end != '\0' || errno == ERANGE || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int parse_apikey(const char *s, int16_t *out) {
        long v;
        int i;

        if (parse_long(s, 0, INT16_MAX, &v) == 0) {
                *out = (int16_t)v;
                return 0;
        }
        for (i = 0; i < API_KEYS_CNT; i++) {
                if (!strcasecmp(s, api_keys[i].name)) {
                        *out = api_keys[i].key;
                        return 0;
                }
        }
        return -1;
}

static int parse_errcode(const char *s, rd_kafka_resp_err_t *out) {
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;
        long v;
        static const char prefix[] = "RD_KAFKA_RESP_ERR_";

        if (parse_long(s, INT16_MIN, INT16_MAX, &v) == 0) {
                *out = (rd_kafka_resp_err_t)v;
                return 0;
        }
        if (!strncasecmp(s, prefix, sizeof(prefix) - 1))
                s += sizeof(prefix) - 1;
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (descs[i].name && !strcasecmp(s, descs[i].name)) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

static int parse_broker(const char *s, int allow_all, int32_t *out) {
        long v;
        if (parse_long(s, allow_all ? -1 : INT32_MIN, INT32_MAX, &v) == -1)
                return -1;
        *out = (int32_t)v;
        return 0;
}

static void reply_err(char *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_err(char *reply, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(reply, REPLY_MAX, "ERR ");
        va_start(ap, fmt);
        vsnprintf(reply + n, (size_t)(REPLY_MAX - n), fmt, ap);
        va_end(ap);
}

static void reply_kerr(char *reply, rd_kafka_resp_err_t err) {
        if (!err)
                snprintf(reply, REPLY_MAX, "OK");
        else
                snprintf(reply, REPLY_MAX, "ERR %s: %s", rd_kafka_err2name(err),
                         rd_kafka_err2str(err));
}

#define EXPECT_ARGS(lo, hi, usage)                                             \
        do {                                                                   \
                if (argc < (lo) || argc > (hi)) {                              \
                        reply_err(reply, "usage: %s", usage);                  \
                        return 0;                                              \
                }                                                              \
        } while (0)

#define BAD(what, tok)                                                         \
        do {                                                                   \
                reply_err(reply, "bad " what ": '%s'", tok);                   \
                return 0;                                                      \
        } while (0)

/* Run one command. Fills reply (without newline).
 * Returns 1 if the program should exit afterwards, else 0. */
static int run_command(int argc, char **argv, char *reply) {
        const char *cmd = argv[0];
        long v, v2;
        int32_t broker, partition;
        int16_t apikey;
        rd_kafka_resp_err_t code;

        snprintf(reply, REPLY_MAX, "OK");

        if (!strcmp(cmd, "ping")) {
                EXPECT_ARGS(1, 1, "ping");

        } else if (!strcmp(cmd, "quit")) {
                EXPECT_ARGS(1, 1, "quit");
                return 1;

        } else if (!strcmp(cmd, "topic")) {
                EXPECT_ARGS(4, 4, "topic NAME PARTITIONS REPLICATION");
                if (parse_long(argv[2], 1, MAX_PARTITIONS, &v) == -1)
                        BAD("partition count", argv[2]);
                if (parse_long(argv[3], 1, INT16_MAX, &v2) == -1)
                        BAD("replication factor", argv[3]);
                reply_kerr(reply, rd_kafka_mock_topic_create(
                                      mcluster, argv[1], (int)v, (int)v2));

        } else if (!strcmp(cmd, "leader") || !strcmp(cmd, "follower")) {
                int is_leader = !strcmp(cmd, "leader");
                EXPECT_ARGS(4, 4,
                            is_leader ? "leader TOPIC PARTITION BROKERID"
                                      : "follower TOPIC PARTITION BROKERID");
                if (parse_long(argv[2], 0, MAX_PARTITIONS - 1, &v) == -1)
                        BAD("partition", argv[2]);
                partition = (int32_t)v;
                if (parse_broker(argv[3], is_leader, &broker) == -1)
                        BAD("broker id", argv[3]);
                if (is_leader)
                        reply_kerr(reply,
                                   rd_kafka_mock_partition_set_leader(
                                       mcluster, argv[1], partition, broker));
                else
                        reply_kerr(reply,
                                   rd_kafka_mock_partition_set_follower(
                                       mcluster, argv[1], partition, broker));

        } else if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
                EXPECT_ARGS(2, 2, "down|up BROKERID");
                if (parse_broker(argv[1], 1, &broker) == -1)
                        BAD("broker id", argv[1]);
                if (!strcmp(cmd, "down"))
                        reply_kerr(reply, rd_kafka_mock_broker_set_down(
                                              mcluster, broker));
                else
                        reply_kerr(reply,
                                   rd_kafka_mock_broker_set_up(mcluster, broker));

        } else if (!strcmp(cmd, "rtt")) {
                EXPECT_ARGS(3, 3, "rtt BROKERID MS");
                if (parse_broker(argv[1], 1, &broker) == -1)
                        BAD("broker id", argv[1]);
                if (parse_long(argv[2], 0, MAX_MS, &v) == -1)
                        BAD("rtt", argv[2]);
                reply_kerr(reply,
                           rd_kafka_mock_broker_set_rtt(mcluster, broker, (int)v));

        } else if (!strcmp(cmd, "error")) {
                rd_kafka_resp_err_t *errs;
                long i;
                EXPECT_ARGS(3, 4, "error APIKEY ERRCODE [COUNT]");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("api key", argv[1]);
                if (parse_errcode(argv[2], &code) == -1)
                        BAD("error code", argv[2]);
                v = 1;
                if (argc == 4 && parse_long(argv[3], 1, MAX_COUNT, &v) == -1)
                        BAD("count", argv[3]);
                errs = malloc(sizeof(*errs) * (size_t)v);
                if (!errs) {
                        reply_err(reply, "out of memory");
                        return 0;
                }
                for (i = 0; i < v; i++)
                        errs[i] = code;
                rd_kafka_mock_push_request_errors_array(mcluster, apikey,
                                                        (size_t)v, errs);
                free(errs);

        } else if (!strcmp(cmd, "broker_error")) {
                long cnt = 1, ms = 0, i;
                EXPECT_ARGS(4, 6,
                            "broker_error BROKERID APIKEY ERRCODE [COUNT [MS]]");
                if (parse_broker(argv[1], 0, &broker) == -1)
                        BAD("broker id", argv[1]);
                if (parse_apikey(argv[2], &apikey) == -1)
                        BAD("api key", argv[2]);
                if (parse_errcode(argv[3], &code) == -1)
                        BAD("error code", argv[3]);
                if (argc >= 5 && parse_long(argv[4], 1, MAX_COUNT, &cnt) == -1)
                        BAD("count", argv[4]);
                if (argc >= 6 && parse_long(argv[5], 0, MAX_MS, &ms) == -1)
                        BAD("delay", argv[5]);
                /* The API is variadic (err, rtt) pairs: push one at a time.
                 * The first call reports an unknown broker, if any. */
                for (i = 0; i < cnt; i++) {
                        rd_kafka_resp_err_t err =
                            rd_kafka_mock_broker_push_request_error_rtts(
                                mcluster, broker, apikey, 1, code, (int)ms);
                        if (err) {
                                reply_kerr(reply, err);
                                return 0;
                        }
                }

        } else if (!strcmp(cmd, "broker_error_count")) {
                size_t cnt = 0;
                rd_kafka_resp_err_t err;
                EXPECT_ARGS(3, 3, "broker_error_count BROKERID APIKEY");
                if (parse_broker(argv[1], 0, &broker) == -1)
                        BAD("broker id", argv[1]);
                if (parse_apikey(argv[2], &apikey) == -1)
                        BAD("api key", argv[2]);
                err = rd_kafka_mock_broker_error_stack_cnt(mcluster, broker,
                                                           apikey, &cnt);
                if (err)
                        reply_kerr(reply, err);
                else
                        snprintf(reply, REPLY_MAX, "OK %zu", cnt);

        } else if (!strcmp(cmd, "clear_errors")) {
                EXPECT_ARGS(2, 2, "clear_errors APIKEY");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("api key", argv[1]);
                rd_kafka_mock_clear_request_errors(mcluster, apikey);

        } else if (!strcmp(cmd, "coordinator")) {
                EXPECT_ARGS(4, 4, "coordinator group|transaction KEY BROKERID");
                if (strcmp(argv[1], "group") && strcmp(argv[1], "transaction"))
                        BAD("coordinator type (want group|transaction)",
                            argv[1]);
                if (parse_long(argv[3], 1, broker_cnt, &v) == -1)
                        BAD("broker id (must be an existing broker)", argv[3]);
                reply_kerr(reply, rd_kafka_mock_coordinator_set(
                                      mcluster, argv[1], argv[2], (int32_t)v));

        } else if (!strcmp(cmd, "topic_error")) {
                EXPECT_ARGS(3, 3, "topic_error TOPIC ERRCODE");
                if (parse_errcode(argv[2], &code) == -1)
                        BAD("error code", argv[2]);
                rd_kafka_mock_topic_set_error(mcluster, argv[1], code);

        } else if (!strcmp(cmd, "rack")) {
                EXPECT_ARGS(3, 3, "rack BROKERID RACK");
                if (parse_broker(argv[1], 1, &broker) == -1)
                        BAD("broker id", argv[1]);
                reply_kerr(reply, rd_kafka_mock_broker_set_rack(
                                      mcluster, broker, argv[2]));

        } else if (!strcmp(cmd, "wmarks")) {
                long lo, hi;
                EXPECT_ARGS(5, 5, "wmarks TOPIC PARTITION LO HI");
                if (parse_long(argv[2], 0, MAX_PARTITIONS - 1, &v) == -1)
                        BAD("partition", argv[2]);
                if (parse_long(argv[3], -1, LONG_MAX, &lo) == -1)
                        BAD("low watermark", argv[3]);
                if (parse_long(argv[4], -1, LONG_MAX, &hi) == -1)
                        BAD("high watermark", argv[4]);
                reply_kerr(reply, rd_kafka_mock_partition_set_follower_wmarks(
                                      mcluster, argv[1], (int32_t)v,
                                      (int64_t)lo, (int64_t)hi));

#if RD_KAFKA_VERSION >= 0x020f0000
        } else if (!strcmp(cmd, "topic_delete")) {
                EXPECT_ARGS(2, 2, "topic_delete TOPIC");
                reply_kerr(reply, rd_kafka_mock_topic_delete(mcluster, argv[1]));

        } else if (!strcmp(cmd, "track")) {
                EXPECT_ARGS(2, 2, "track start|stop|clear");
                if (!strcmp(argv[1], "start"))
                        rd_kafka_mock_start_request_tracking(mcluster);
                else if (!strcmp(argv[1], "stop"))
                        rd_kafka_mock_stop_request_tracking(mcluster);
                else if (!strcmp(argv[1], "clear"))
                        rd_kafka_mock_clear_requests(mcluster);
                else
                        BAD("track action", argv[1]);

        } else if (!strcmp(cmd, "requests")) {
                static size_t per_key[INT16_MAX + 1];
                rd_kafka_mock_request_t **reqs;
                size_t cnt, i, total = 0;
                int only = -1, n;
                EXPECT_ARGS(1, 2, "requests [APIKEY]");
                if (argc == 2) {
                        if (parse_apikey(argv[1], &apikey) == -1)
                                BAD("api key", argv[1]);
                        only = apikey;
                }
                memset(per_key, 0, sizeof(per_key));
                reqs = rd_kafka_mock_get_requests(mcluster, &cnt);
                for (i = 0; i < cnt; i++) {
                        int16_t k = rd_kafka_mock_request_api_key(reqs[i]);
                        if (k >= 0 && (only == -1 || k == only)) {
                                per_key[k]++;
                                total++;
                        }
                }
                rd_kafka_mock_request_destroy_array(reqs, cnt);
                n = snprintf(reply, REPLY_MAX, "OK %zu", total);
                for (i = 0; i <= INT16_MAX && n < REPLY_MAX - 32; i++)
                        if (per_key[i])
                                n += snprintf(reply + n, (size_t)(REPLY_MAX - n),
                                              " %zu=%zu", i, per_key[i]);

        } else if (!strcmp(cmd, "broker_requests")) {
                size_t per_broker[MAX_BROKERS + 1];
                rd_kafka_mock_request_t **reqs;
                size_t cnt, i, total = 0;
                int n;
                EXPECT_ARGS(2, 2, "broker_requests APIKEY");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("api key", argv[1]);
                memset(per_broker, 0, sizeof(per_broker));
                reqs = rd_kafka_mock_get_requests(mcluster, &cnt);
                for (i = 0; i < cnt; i++) {
                        int32_t id = rd_kafka_mock_request_id(reqs[i]);
                        if (rd_kafka_mock_request_api_key(reqs[i]) == apikey &&
                            id >= 1 && id <= MAX_BROKERS) {
                                per_broker[id]++;
                                total++;
                        }
                }
                rd_kafka_mock_request_destroy_array(reqs, cnt);
                n = snprintf(reply, REPLY_MAX, "OK %zu", total);
                for (i = 1; i <= MAX_BROKERS && n < REPLY_MAX - 32; i++)
                        if (per_broker[i])
                                n += snprintf(reply + n, (size_t)(REPLY_MAX - n),
                                              " %zu=%zu", i, per_broker[i]);

        } else if (!strcmp(cmd, "cgrp_consumer")) {
                EXPECT_ARGS(3, 3, "cgrp_consumer SESSION_MS HEARTBEAT_MS");
                if (parse_long(argv[1], 1, MAX_MS, &v) == -1)
                        BAD("session timeout", argv[1]);
                if (parse_long(argv[2], 1, MAX_MS, &v2) == -1)
                        BAD("heartbeat interval", argv[2]);
                rd_kafka_mock_set_group_consumer_session_timeout_ms(mcluster, (int)v);
                rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(mcluster, (int)v2);
#else
        } else if (!strcmp(cmd, "topic_delete") || !strcmp(cmd, "track") ||
                   !strcmp(cmd, "requests") || !strcmp(cmd, "broker_requests") ||
                   !strcmp(cmd, "cgrp_consumer")) {
                reply_err(reply, "'%s' needs librdkafka >= 2.15's mock "
                                 "(FERROKAFKA_MOCK=2.16)", cmd);
#endif
        } else if (!strcmp(cmd, "apiversion")) {
                long minv, maxv;
                int i, found = -1;
                EXPECT_ARGS(4, 4, "apiversion APIKEY MIN MAX");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("api key", argv[1]);
                for (i = 0; i < API_KEYS_CNT; i++)
                        if (api_keys[i].key == apikey)
                                found = i;
                if (found == -1)
                        BAD("api key (not implemented by the mock)", argv[1]);
                if (parse_long(argv[2], -1, INT16_MAX, &minv) == -1)
                        BAD("min version", argv[2]);
                if (parse_long(argv[3], -1, INT16_MAX, &maxv) == -1)
                        BAD("max version", argv[3]);
                if ((minv == -1) != (maxv == -1) || minv > maxv ||
                    maxv > api_keys[found].max_version) {
                        snprintf(reply, REPLY_MAX,
                                 "ERR bad version range %ld..%ld for %s "
                                 "(mock implements 0..%d; -1 -1 disables)",
                                 minv, maxv, api_keys[found].name,
                                 api_keys[found].max_version);
                        return 0;
                }
                reply_kerr(reply, rd_kafka_mock_set_apiversion(
                                      mcluster, apikey, (int16_t)minv,
                                      (int16_t)maxv));

        } else {
                reply_err(reply, "unknown command '%s'", cmd);
        }

        return 0;
}

static void usage(const char *prog) {
        fprintf(stderr, "usage: %s [--brokers N] [--debug CONTEXTS]\n", prog);
}

static void send_line(const char *s) {
        if (printf("%s\n", s) < 0 || fflush(stdout) != 0)
                _exit(1); /* stdout gone: nobody is listening any more */
}

int main(int argc, char **argv) {
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        char errstr[512];
        const char *debug = NULL;
        char *line        = NULL;
        size_t cap        = 0;
        ssize_t len;
        int i;
        long v;
        struct sigaction sa;

#ifdef __linux__
        {
                pid_t ppid = getppid();
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1) {
                        perror("prctl(PR_SET_PDEATHSIG)");
                        return 1;
                }
                if (getppid() != ppid) /* parent already gone */
                        return 0;
        }
#endif

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        if (parse_long(argv[++i], 1, MAX_BROKERS, &v) == -1) {
                                fprintf(stderr, "bad --brokers value '%s'\n",
                                        argv[i]);
                                return 2;
                        }
                        broker_cnt = (int)v;
                } else if (!strcmp(argv[i], "--debug") && i + 1 < argc) {
                        debug = argv[++i];
                } else {
                        usage(argv[0]);
                        return 2;
                }
        }

        if (rd_kafka_version() != RD_KAFKA_VERSION)
                fprintf(stderr,
                        "mock_cluster: warning: built against librdkafka "
                        "0x%08x, running with %s\n",
                        RD_KAFKA_VERSION, rd_kafka_version_str());

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_to_stderr);
        if (rd_kafka_conf_set(conf, "client.id", "ferrokafka-mock", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", debug ? "7" : "3", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            (debug && rd_kafka_conf_set(conf, "debug", debug, errstr,
                                        sizeof(errstr)) != RD_KAFKA_CONF_OK)) {
                fprintf(stderr, "mock_cluster: config: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }

        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "mock_cluster: rd_kafka_new: %s\n", errstr);
                return 1;
        }

        mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mcluster) {
                fprintf(stderr, "mock_cluster: failed to create mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }

        {
                char out[4096];
                snprintf(out, sizeof(out), "BOOTSTRAP %s",
                         rd_kafka_mock_cluster_bootstraps(mcluster));
                send_line(out);
        }

        while ((len = getline(&line, &cap, stdin)) != -1) {
                char *args[MAX_ARGS + 1];
                char *save = NULL, *tok;
                char reply[REPLY_MAX];
                int nargs = 0, quit = 0;

                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';

                for (tok = strtok_r(line, " \t", &save); tok;
                     tok = strtok_r(NULL, " \t", &save)) {
                        if (nargs == MAX_ARGS + 1)
                                break;
                        args[nargs++] = tok;
                }

                if (nargs == 0)
                        snprintf(reply, sizeof(reply), "ERR empty command");
                else if (nargs > MAX_ARGS)
                        snprintf(reply, sizeof(reply), "ERR too many arguments");
                else
                        quit = run_command(nargs, args, reply);

                send_line(reply);
                if (quit)
                        break;
        }

        free(line);
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
