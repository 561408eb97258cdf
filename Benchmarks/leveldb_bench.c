/*
 * leveldb_bench: LevelDB measured the way kvbench measures Shale.
 *
 * A small harness over LevelDB's C API (Debian's libleveldb-dev) with LevelDB's default
 * options, as LevelDB's own db_bench uses them (4 MB write buffer, 4 KB blocks, the
 * library's default compression, no Bloom filter, the default 8 MB block cache). Keys and
 * values are generated exactly as in kvbench and LevelDB's db_bench: the key number as
 * zero-padded decimal, values sliced from a 1 MB pool of half-compressible data built
 * with LevelDB's Random(301). One Put or Get per operation.
 *
 * Output: one db_bench-style line per benchmark, then a percentile line, the same shapes
 * kvbench prints:
 *
 *   fillseq      :       2.345 micros/op 426439 ops/sec 2.345 seconds 1000000 operations;   47.2 MB/s
 *                  P50: 1.80 P95: 3.10 P99: 5.20 P99.9: 20.40 Max: 1534.00 (microseconds)
 *
 * Benchmarks: fillseq, fillrandom, overwrite, fillsync, readrandom, readseq, compact.
 *
 * Build: cc -O2 -o leveldb_bench leveldb_bench.c -lleveldb -lpthread
 */
#define _GNU_SOURCE
#include <leveldb/c.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- flags ------------------------------------------------------------------------ */

static const char *flag_benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq";
static long flag_num = 1000000;
static long flag_reads = -1;
static long flag_writes = -1;
static int flag_threads = 1;
static int flag_key_size = 16;
static int flag_value_size = 100;
static double flag_compression_ratio = 0.5;
static const char *flag_db = NULL;
static int flag_use_existing_db = 0;
static int flag_seed = 1000;

static void usage(void) {
    fprintf(stderr,
            "usage: leveldb_bench [--benchmarks=LIST] [--num=N] [--reads=N] [--writes=N] [--threads=N]\n"
            "                     [--key_size=N] [--value_size=N] [--compression_ratio=R] --db=DIR\n"
            "                     [--use_existing_db=0|1] [--seed=N]\n");
    exit(2);
}

static int parse_flag(const char *arg, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=') return 0;
    *value = arg + 3 + n;
    return 1;
}

/* ---- LevelDB's Random and db_bench's value generator ------------------------------ */

typedef struct {
    uint32_t seed;
} Random;

static void random_init(Random *r, uint32_t s) {
    r->seed = s & 0x7fffffffu;
    if (r->seed == 0 || r->seed == 2147483647u) r->seed = 1;
}

static uint32_t random_next(Random *r) {
    const uint32_t M = 2147483647u;
    const uint64_t A = 16807;
    uint64_t product = r->seed * A;
    r->seed = (uint32_t)((product >> 31) + (product & M));
    if (r->seed > M) r->seed -= M;
    return r->seed;
}

static uint32_t random_uniform(Random *r, uint32_t n) { return random_next(r) % n; }

static char *value_pool;
static size_t value_pool_size;

/* db_bench's RandomGenerator: 100-byte CompressibleString pieces until >= 1 MB. */
static void build_value_pool(void) {
    Random rnd;
    random_init(&rnd, 301);
    size_t target = 1048576;
    if ((size_t)flag_value_size + 1 > target) target = (size_t)flag_value_size + 1;
    value_pool = malloc(target + 100);
    size_t size = 0;
    int raw_len = (int)(100 * flag_compression_ratio);
    if (raw_len < 1) raw_len = 1;
    char raw[100];
    while (size < target) {
        for (int i = 0; i < raw_len; i++) raw[i] = (char)(' ' + random_uniform(&rnd, 95));
        for (int i = 0; i < 100; i++) value_pool[size + i] = raw[i % raw_len];
        size += 100;
    }
    value_pool_size = size;
}

static const char *next_value(size_t *pos) {
    if (*pos + (size_t)flag_value_size > value_pool_size) *pos = 0;
    const char *v = value_pool + *pos;
    *pos += (size_t)flag_value_size;
    return v;
}

static void format_key(char *buf, long k) {
    for (int i = flag_key_size - 1; i >= 0; i--) {
        buf[i] = (char)('0' + k % 10);
        k /= 10;
    }
}

/* ---- latency histogram: log2 major buckets x 128 linear sub-buckets (< 1% error) -- */

#define SUB_BUCKETS 128
#define MAJOR_BUCKETS 48

typedef struct {
    uint64_t counts[MAJOR_BUCKETS][SUB_BUCKETS];
    uint64_t total;
    uint64_t max;
} Histogram;

static void hist_record(Histogram *h, uint64_t ns) {
    int major = 0;
    uint64_t v = ns;
    while (v >= SUB_BUCKETS && major < MAJOR_BUCKETS - 1) {
        v >>= 1;
        major++;
    }
    if (v >= SUB_BUCKETS) v = SUB_BUCKETS - 1;
    h->counts[major][v]++;
    h->total++;
    if (ns > h->max) h->max = ns;
}

static void hist_merge(Histogram *into, const Histogram *from) {
    for (int m = 0; m < MAJOR_BUCKETS; m++)
        for (int s = 0; s < SUB_BUCKETS; s++) into->counts[m][s] += from->counts[m][s];
    into->total += from->total;
    if (from->max > into->max) into->max = from->max;
}

/* The value below which p percent of samples fall (bucket midpoint), in microseconds. */
static double hist_percentile(const Histogram *h, double p) {
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (int m = 0; m < MAJOR_BUCKETS; m++) {
        for (int s = 0; s < SUB_BUCKETS; s++) {
            seen += h->counts[m][s];
            if (seen >= want) {
                double lo = (double)((uint64_t)s << m);
                double width = (double)(1ull << m);
                double mid = lo + width / 2;
                if (mid > (double)h->max) mid = (double)h->max;
                return mid / 1e3;
            }
        }
    }
    return (double)h->max / 1e3;
}

/* ---- benchmark threads -------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef enum { FILLSEQ, FILLRANDOM, OVERWRITE, FILLSYNC, READRANDOM, READSEQ, COMPACT } Kind;

typedef struct {
    leveldb_t *db;
    Kind kind;
    int index;
    uint32_t seed;
    long count;
    pthread_barrier_t *barrier;
    /* results */
    Histogram *hist;
    long ops;
    long bytes;
    long found;
    uint64_t start, finish;
    char *error;
} Thread;

static void *thread_main(void *arg) {
    Thread *t = arg;
    Random rnd;
    random_init(&rnd, t->seed);
    char key[1024];
    size_t pos = 0;
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(wo, t->kind == FILLSYNC);
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    pthread_barrier_wait(t->barrier);
    t->start = now_ns();
    uint64_t last = t->start;
    char *err = NULL;
    switch (t->kind) {
    case FILLSEQ:
    case FILLRANDOM:
    case OVERWRITE:
    case FILLSYNC:
        for (long i = 0; i < t->count && !err; i++) {
            format_key(key, t->kind == FILLSEQ ? i : (long)random_uniform(&rnd, (uint32_t)flag_num));
            leveldb_put(t->db, wo, key, (size_t)flag_key_size, next_value(&pos), (size_t)flag_value_size, &err);
            t->bytes += flag_key_size + flag_value_size;
            uint64_t now = now_ns();
            hist_record(t->hist, now - last);
            last = now;
            t->ops++;
        }
        break;
    case READRANDOM:
        for (long i = 0; i < t->count && !err; i++) {
            format_key(key, (long)random_uniform(&rnd, (uint32_t)flag_num));
            size_t vlen = 0;
            char *v = leveldb_get(t->db, ro, key, (size_t)flag_key_size, &vlen, &err);
            if (v) {
                t->found++;
                t->bytes += flag_key_size + (long)vlen;
                leveldb_free(v);
            }
            uint64_t now = now_ns();
            hist_record(t->hist, now - last);
            last = now;
            t->ops++;
        }
        break;
    case READSEQ: {
        leveldb_iterator_t *it = leveldb_create_iterator(t->db, ro);
        leveldb_iter_seek_to_first(it);
        for (long i = 0; i < t->count && leveldb_iter_valid(it); i++) {
            size_t klen, vlen;
            leveldb_iter_key(it, &klen);
            leveldb_iter_value(it, &vlen);
            t->bytes += (long)(klen + vlen);
            leveldb_iter_next(it);
            uint64_t now = now_ns();
            hist_record(t->hist, now - last);
            last = now;
            t->ops++;
        }
        leveldb_iter_get_error(it, &err);
        leveldb_iter_destroy(it);
        break;
    }
    case COMPACT:
        leveldb_compact_range(t->db, NULL, 0, NULL, 0);
        hist_record(t->hist, now_ns() - last);
        t->ops = 1;
        break;
    }
    t->finish = now_ns();
    t->error = err;
    leveldb_writeoptions_destroy(wo);
    leveldb_readoptions_destroy(ro);
    return NULL;
}

/* ---- database ------------------------------------------------------------------------ */

static leveldb_t *open_db(leveldb_options_t *options) {
    char *err = NULL;
    leveldb_t *db = leveldb_open(options, flag_db, &err);
    if (err) {
        fprintf(stderr, "leveldb_bench: open %s: %s\n", flag_db, err);
        exit(1);
    }
    return db;
}

static void destroy_db(leveldb_options_t *options) {
    char *err = NULL;
    leveldb_destroy_db(options, flag_db, &err);
    if (err) leveldb_free(err);
}

static long dir_size(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    long total = 0;
    struct dirent *e;
    char full[4096];
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) total += (long)st.st_size;
    }
    closedir(d);
    return total;
}

static int total_threads = 0;

static void run(leveldb_t *db, const char *name, Kind kind, int nthreads, long count) {
    Thread *threads = calloc((size_t)nthreads, sizeof(Thread));
    pthread_t *ids = calloc((size_t)nthreads, sizeof(pthread_t));
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        total_threads++;
        threads[i] = (Thread){.db = db, .kind = kind, .index = i, .count = count, .barrier = &barrier};
        threads[i].seed = (uint32_t)(flag_seed + total_threads);
        threads[i].hist = calloc(1, sizeof(Histogram));
        pthread_create(&ids[i], NULL, thread_main, &threads[i]);
    }
    Histogram *hist = calloc(1, sizeof(Histogram));
    long ops = 0, bytes = 0, found = 0;
    uint64_t start = UINT64_MAX, finish = 0, busy = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(ids[i], NULL);
        Thread *t = &threads[i];
        if (t->error) {
            fprintf(stderr, "leveldb_bench: %s: %s\n", name, t->error);
            exit(1);
        }
        hist_merge(hist, t->hist);
        ops += t->ops;
        bytes += t->bytes;
        found += t->found;
        if (t->start < start) start = t->start;
        if (t->finish > finish) finish = t->finish;
        busy += t->finish - t->start;
        free(t->hist);
    }
    pthread_barrier_destroy(&barrier);
    if (ops < 1) ops = 1;
    double seconds = (double)(finish - start) / 1e9;
    if (seconds < 1e-9) seconds = 1e-9;
    char extra[128] = "";
    if (bytes > 0) snprintf(extra, sizeof extra, " %6.1f MB/s", (double)bytes / 1048576.0 / seconds);
    if (kind == READRANDOM) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, " (%ld of %ld found)", found, ops);
    }
    printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %ld operations;%s\n", name,
           (double)busy / 1e3 / (double)ops, (long)((double)ops / seconds), seconds, ops, extra);
    printf("%15sP50: %.2f P95: %.2f P99: %.2f P99.9: %.2f Max: %.2f (microseconds)\n", "", hist_percentile(hist, 50),
           hist_percentile(hist, 95), hist_percentile(hist, 99), hist_percentile(hist, 99.9), (double)hist->max / 1e3);
    fflush(stdout);
    free(hist);
    free(threads);
    free(ids);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (parse_flag(argv[i], "benchmarks", &v)) flag_benchmarks = v;
        else if (parse_flag(argv[i], "num", &v)) flag_num = atol(v);
        else if (parse_flag(argv[i], "reads", &v)) flag_reads = atol(v);
        else if (parse_flag(argv[i], "writes", &v)) flag_writes = atol(v);
        else if (parse_flag(argv[i], "threads", &v)) flag_threads = atoi(v);
        else if (parse_flag(argv[i], "key_size", &v)) flag_key_size = atoi(v);
        else if (parse_flag(argv[i], "value_size", &v)) flag_value_size = atoi(v);
        else if (parse_flag(argv[i], "compression_ratio", &v)) flag_compression_ratio = atof(v);
        else if (parse_flag(argv[i], "db", &v)) flag_db = v;
        else if (parse_flag(argv[i], "use_existing_db", &v)) flag_use_existing_db = atoi(v);
        else if (parse_flag(argv[i], "seed", &v)) flag_seed = atoi(v);
        else usage();
    }
    if (!flag_db || flag_num <= 0 || flag_threads <= 0 || flag_key_size < 1 || flag_key_size > 1000 ||
        flag_value_size < 0)
        usage();
    long reads = flag_reads < 0 ? flag_num : flag_reads;
    build_value_pool();

    leveldb_options_t *options = leveldb_options_create();
    leveldb_options_set_create_if_missing(options, 1);

    printf("LevelDB:    version %d.%d (C API, default options)\n", leveldb_major_version(), leveldb_minor_version());
    printf("Keys:       %d bytes each\n", flag_key_size);
    printf("Values:     %d bytes each (%d bytes after compression)\n", flag_value_size,
           (int)(flag_value_size * flag_compression_ratio + 0.5));
    printf("Entries:    %ld\n", flag_num);
    printf("------------------------------------------------\n");

    if (!flag_use_existing_db) destroy_db(options);
    leveldb_t *db = open_db(options);

    char *list = strdup(flag_benchmarks);
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        Kind kind;
        long count;
        int fresh = 0;
        if (!strcmp(name, "fillseq")) kind = FILLSEQ, count = flag_writes < 0 ? flag_num : flag_writes, fresh = 1;
        else if (!strcmp(name, "fillrandom")) kind = FILLRANDOM, count = flag_writes < 0 ? flag_num : flag_writes, fresh = 1;
        else if (!strcmp(name, "overwrite")) kind = OVERWRITE, count = flag_writes < 0 ? flag_num : flag_writes;
        else if (!strcmp(name, "fillsync")) kind = FILLSYNC, count = flag_writes < 0 ? flag_num / 1000 : flag_writes, fresh = 1;
        else if (!strcmp(name, "readrandom")) kind = READRANDOM, count = reads;
        else if (!strcmp(name, "readseq")) kind = READSEQ, count = reads;
        else if (!strcmp(name, "compact")) kind = COMPACT, count = 1;
        else {
            fprintf(stderr, "leveldb_bench: unknown benchmark '%s'\n", name);
            exit(2);
        }
        if (fresh) {
            if (flag_use_existing_db) {
                printf("%-12s : skipped (--use_existing_db is true)\n", name);
                continue;
            }
            leveldb_close(db);
            destroy_db(options);
            db = open_db(options);
        }
        run(db, name, kind, kind == COMPACT ? 1 : flag_threads, count);
    }
    free(list);
    leveldb_close(db);
    printf("------------------------------------------------\n");
    printf("DB size:    %ld bytes on disk\n", dir_size(flag_db));
    leveldb_options_destroy(options);
    return 0;
}
