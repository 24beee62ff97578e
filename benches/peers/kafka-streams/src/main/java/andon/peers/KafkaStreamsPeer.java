/*
 * The Kafka Streams peer of scripts/bench-peers (`--apache`): andon's core
 * job, written as a Kafka Streams application would write it, so that
 * andon's cost can be set beside Kafka Streams' on the same broker.
 *
 * WHAT IT DOES, on the complaints topic only:
 * - Processor API, one processor after the source, one RocksDB key-value
 *   store with its changelog (the default: logging on), caching on (the
 *   DSL's default; flushed at each commit), keyed by the record key, i.e.
 *   the subject key. The inputs are keyed by subject key as andon's are,
 *   so there is no repartition topic.
 * - processing.guarantee=exactly_once_v2, commit.interval.ms=100 (andon's
 *   processing.commit_interval default), num.stream.threads from
 *   --threads (bench-peers gives the number of cores, as andon's
 *   processing.threads = 0 does).
 * - Per (subject, issue), the counted complaints of a sliding event-time
 *   window: event time is the complaint's occurred_at, parsed from the
 *   JSON in the processor (nanoseconds, as andon holds it). Kafka Streams'
 *   own timestamps (stream time, the choice of the next record among a
 *   task's partitions) are the record timestamps of the default
 *   extractor, which the bench sets equal to occurred_at.
 * - The pull condition of andon's rule 2: right after a counted complaint
 *   c, some interval of length W (ends included) containing c's
 *   occurred_at holds counted complaints from at least N distinct
 *   customers (N = 3, W = 1 h by default: --threshold, --window-seconds,
 *   as bench-peers configures andon). A manual pull (`"pull": true`) pulls
 *   at once.
 * - A pull is latched once per episode: the key's counted complaints are
 *   cleared and every later complaint of the key is attached to the open
 *   andon (rule 4). Nothing ever closes it here (no updates are read).
 * - On a pull: a delist command (when the subject has no other open
 *   andon: the default rule's action is delist) on the delist-commands
 *   topic and a work-order `opened` event on the work-orders topic, keyed
 *   by subject key, JSON with andon's fields and ids (docs/records.md):
 *   command_id <subject key>#delist#<m>, andon_id <subject key>/<issue>#<n>,
 *   the evidence as andon picks it (the qualifying interval that starts
 *   earliest; the pulling complaint for its customer and the earliest
 *   complaint of each other customer; at most 100 listed), the steps of
 *   andon's default route (product 24 h, operations 12 h, supply_chain 48 h).
 * - Lateness (rule 3) against Kafka Streams' stream time of the task (the
 *   largest record timestamp, in milliseconds), grace 1 day; counted
 *   complaints older than stream time - 2 W - grace are forgotten.
 *
 * WHAT IT DOES NOT DO, so that the comparison is honest (andon does all of
 * these in the same run, and pays for them):
 * - no work-order updates topic, hence no steps completed, no closes, no
 *   relists, no verdicts, no stale complaints, and no merge of two inputs
 *   by event time;
 * - no escalations (no punctuator);
 * - no read model (andon writes and reads back its view topic);
 * - no DLQ: a record that does not parse, or lacks a field, is counted and
 *   skipped; no key, size or future-skew checks;
 * - no duplicate detection by event_id;
 * - one rule for every issue (andon looks the rule up per issue);
 * - the window is a sorted list scanned per complaint, O(k^2) in the
 *   complaints a key holds within the window (andon: O(log k) once
 *   flooded); fine for the bench's traffic, not for a flooded key.
 *
 * Progress, for the benchmark, on stdout, one line each:
 *   main <epoch ms>             main() entered (the JVM is up)
 *   running <epoch ms>          the client reached RUNNING (after its first
 *                               assignment and restore)
 *   first <epoch ms>            the first record processed
 *   processed <n> <epoch ms>    when the count of records processed
 *                               (parsed or not) reaches --expect
 * bench-peers takes "all processed" from the group's committed offsets,
 * not from these lines (see its header).
 * With --failover (bench-peers MODE=failover), also:
 *   restored <partition> <records> <epoch ms>    a store's restore ended
 *                                                (StateRestoreListener)
 *   standby-start <partition> <starting offset> <epoch ms>
 *                                                a standby task began
 *                                                (its store's checkpoint)
 *   standby <partition> <batch end offset> <epoch ms>
 *                                                a standby task loaded a
 *                                                batch of its changelog
 *                                                (StandbyUpdateListener)
 *   rebalancing <epoch ms>                       the client went from
 *                                                RUNNING to REBALANCING
 *
 * Failover options (bench-peers MODE=failover), off unless given:
 *   --standby N             num.standby.replicas (default 0)
 *   --session-timeout-ms MS the consumers' session.timeout.ms (Kafka's
 *                           default 45000)
 *   --heartbeat-ms MS       the consumers' heartbeat.interval.ms (Kafka's
 *                           default 3000)
 *   --client-id ID          client.id (the consumers are then
 *                           ID-StreamThread-<n>-consumer)
 *   --leave-group true      on SIGTERM, close with
 *                           CloseOptions.GroupMembershipOperation.LEAVE_GROUP:
 *                           the member leaves the group and its tasks move
 *                           at once. A Kafka Streams client closed by
 *                           default does not leave (the consumers' internal
 *                           leave.group.on.close is false): its tasks move
 *                           only after the session timeout, as for a member
 *                           killed.
 *   --failover true         print the restore and standby lines above
 */
package andon.peers;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.processor.StandbyUpdateListener;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.TaskId;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class KafkaStreamsPeer {
    static final String STORE = "subjects";
    static final long NANOS = 1_000_000_000L;
    static final long GRACE_NANOS = 86_400L * NANOS;
    static final int EVIDENCE_LISTED = 100;
    /** andon's default route: owner and sla in seconds. */
    static final String[] ROUTE = {"product", "operations", "supply_chain"};
    static final long[] SLA_SECONDS = {24 * 3600, 12 * 3600, 48 * 3600};

    static final AtomicLong processed = new AtomicLong();
    static final AtomicLong rejected = new AtomicLong();
    static final AtomicBoolean first = new AtomicBoolean();
    static long expect = -1;

    public static void main(String[] args) throws Exception {
        say("main " + System.currentTimeMillis());
        String bootstrap = null, appId = null, stateDir = null;
        String complaints = "andon.complaints", delists = "andon.delist-commands", workOrders = "andon.work-orders";
        int threads = Runtime.getRuntime().availableProcessors(), threshold = 3;
        long windowSeconds = 3600;
        int standby = 0;
        long sessionTimeoutMs = -1, heartbeatMs = -1;
        String clientId = null;
        boolean leaveGroup = false, failover = false;
        for (int i = 0; i < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = v;
                case "--application-id" -> appId = v;
                case "--state-dir" -> stateDir = v;
                case "--threads" -> threads = Integer.parseInt(v);
                case "--threshold" -> threshold = Integer.parseInt(v);
                case "--window-seconds" -> windowSeconds = Long.parseLong(v);
                case "--expect" -> expect = Long.parseLong(v);
                case "--complaints" -> complaints = v;
                case "--delist-commands" -> delists = v;
                case "--work-orders" -> workOrders = v;
                case "--standby" -> standby = Integer.parseInt(v);
                case "--session-timeout-ms" -> sessionTimeoutMs = Long.parseLong(v);
                case "--heartbeat-ms" -> heartbeatMs = Long.parseLong(v);
                case "--client-id" -> clientId = v;
                case "--leave-group" -> leaveGroup = Boolean.parseBoolean(v);
                case "--failover" -> failover = Boolean.parseBoolean(v);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (bootstrap == null || appId == null || stateDir == null) {
            System.err.println("usage: KafkaStreamsPeer --bootstrap B --application-id ID --state-dir DIR"
                    + " [--threads T] [--threshold N] [--window-seconds W] [--expect N] [--standby N]"
                    + " [--session-timeout-ms MS] [--heartbeat-ms MS] [--client-id ID] [--leave-group true] [--failover true]");
            System.exit(2);
        }

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, standby);
        if (sessionTimeoutMs > 0) p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), (int) sessionTimeoutMs);
        if (heartbeatMs > 0) p.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), (int) heartbeatMs);
        if (clientId != null) p.put(StreamsConfig.CLIENT_ID_CONFIG, clientId);

        final int n = threshold;
        final long w = windowSeconds * NANOS;
        final long ws = windowSeconds;
        Topology t = new Topology();
        t.addSource("complaints", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(), complaints);
        t.addProcessor("andon", () -> new Andon(n, w, ws), "complaints");
        t.addStateStore(
                Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.ByteArray())
                        .withCachingEnabled(),
                "andon");
        t.addSink("delist-commands", delists, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "andon");
        t.addSink("work-orders", workOrders, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "andon");

        KafkaStreams streams = new KafkaStreams(t, p);
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                say("running " + System.currentTimeMillis());
            } else if (now == KafkaStreams.State.REBALANCING && before == KafkaStreams.State.RUNNING) {
                say("rebalancing " + System.currentTimeMillis());
            } else if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                if (now == KafkaStreams.State.ERROR) failed.set(true);
                stopped.countDown();
            }
        });
        if (failover) {
            streams.setGlobalStateRestoreListener(new StateRestoreListener() {
                @Override
                public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

                @Override
                public void onBatchRestored(TopicPartition tp, String store, long end, long n) {}

                @Override
                public void onRestoreEnd(TopicPartition tp, String store, long total) {
                    say("restored " + tp.partition() + " " + total + " " + System.currentTimeMillis());
                }
            });
            streams.setStandbyUpdateListener(new StandbyUpdateListener() {
                @Override
                public void onUpdateStart(TopicPartition tp, String store, long start) {
                    say("standby-start " + tp.partition() + " " + start + " " + System.currentTimeMillis());
                }

                @Override
                public void onBatchLoaded(TopicPartition tp, String store, TaskId task, long end, long n, long endOffset) {
                    say("standby " + tp.partition() + " " + end + " " + System.currentTimeMillis());
                }

                @Override
                public void onUpdateSuspended(TopicPartition tp, String store, long stored, long end, SuspendReason why) {}
            });
        }
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            failed.set(true);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        final boolean leave = leaveGroup;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            CloseOptions close = CloseOptions.timeout(java.time.Duration.ofSeconds(20));
            if (leave) close = close.withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP);
            streams.close(close);
            // Here too, not only in main after the await: on SIGTERM the
            // JVM halts once this hook returns, and main's line raced with
            // the halt (bench-peers MEMBERS=3 reads each member's count
            // from it).
            sayStopped();
            stopped.countDown();
        }));
        streams.start();
        stopped.await();
        sayStopped();
        if (failed.get()) Runtime.getRuntime().halt(1);
    }

    static boolean saidStopped;

    /** The count of records processed, once, on stderr. */
    static synchronized void sayStopped() {
        if (saidStopped) return;
        saidStopped = true;
        System.err.println("kafka-streams-peer: stopped; processed " + processed.get() + ", rejected " + rejected.get());
        System.err.flush();
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    // -- state ---------------------------------------------------------------

    /** One counted complaint. */
    record Counted(long at, String customer, String eventId) {}

    /** One (subject, issue). */
    static final class Issue {
        final String issue;
        int andons; // andons opened so far: the n of the next andon_id
        boolean open;
        long attached;
        final ArrayList<Counted> counted = new ArrayList<>(); // by (at, arrival)

        Issue(String issue) {
            this.issue = issue;
        }
    }

    /** One subject: the store's value. */
    static final class Subject {
        int delists; // the m of the last delist command
        int openDelisting; // open delisting andons
        final ArrayList<Issue> issues = new ArrayList<>();

        Issue issue(String name) {
            for (Issue i : issues) if (i.issue.equals(name)) return i;
            Issue i = new Issue(name);
            issues.add(i);
            return i;
        }

        byte[] encode() {
            try {
                ByteArrayOutputStream b = new ByteArrayOutputStream(64);
                DataOutputStream o = new DataOutputStream(b);
                o.writeInt(delists);
                o.writeInt(openDelisting);
                o.writeInt(issues.size());
                for (Issue i : issues) {
                    o.writeUTF(i.issue);
                    o.writeInt(i.andons);
                    o.writeBoolean(i.open);
                    o.writeLong(i.attached);
                    o.writeInt(i.counted.size());
                    for (Counted c : i.counted) {
                        o.writeLong(c.at);
                        o.writeUTF(c.customer);
                        o.writeUTF(c.eventId);
                    }
                }
                o.flush();
                return b.toByteArray();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        static Subject decode(byte[] bytes) {
            Subject s = new Subject();
            if (bytes == null) return s;
            try {
                DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes));
                s.delists = in.readInt();
                s.openDelisting = in.readInt();
                int issues = in.readInt();
                for (int k = 0; k < issues; k++) {
                    Issue i = new Issue(in.readUTF());
                    i.andons = in.readInt();
                    i.open = in.readBoolean();
                    i.attached = in.readLong();
                    int m = in.readInt();
                    i.counted.ensureCapacity(m);
                    for (int j = 0; j < m; j++) i.counted.add(new Counted(in.readLong(), in.readUTF(), in.readUTF()));
                    s.issues.add(i);
                }
                return s;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    // -- the processor ---------------------------------------------------------

    static final class Andon implements Processor<String, byte[], String, byte[]> {
        static final ObjectMapper JSON = new ObjectMapper();
        static final JsonFactory FACTORY = JSON.getFactory();

        final int threshold;
        final long window;
        final long windowSeconds;
        ProcessorContext<String, byte[]> ctx;
        KeyValueStore<String, byte[]> store;

        Andon(int threshold, long window, long windowSeconds) {
            this.threshold = threshold;
            this.window = window;
            this.windowSeconds = windowSeconds;
        }

        @Override
        public void init(ProcessorContext<String, byte[]> context) {
            ctx = context;
            store = context.getStateStore(STORE);
        }

        @Override
        public void process(Record<String, byte[]> r) {
            long done = processed.incrementAndGet();
            if (!first.get() && first.compareAndSet(false, true)) say("first " + System.currentTimeMillis());
            if (done == expect) say("processed " + done + " " + System.currentTimeMillis());

            String key = r.key();
            String kind, id, issueName, customer, eventId;
            long at;
            boolean manual;
            try {
                JsonNode v = JSON.readTree(r.value());
                JsonNode subject = v.get("subject");
                kind = subject.get("kind").textValue();
                id = subject.get("id").textValue();
                issueName = v.get("issue").textValue();
                customer = v.get("customer_id").textValue();
                eventId = v.get("event_id").textValue();
                at = parseNanos(v.get("occurred_at").textValue());
                JsonNode pull = v.get("pull");
                manual = pull != null && pull.booleanValue();
                if (key == null || kind == null || id == null || issueName == null || customer == null || eventId == null) {
                    throw new IllegalArgumentException("missing field");
                }
            } catch (Exception e) {
                rejected.incrementAndGet();
                return;
            }

            Subject s = Subject.decode(store.get(key));
            Issue i = s.issue(issueName);
            long streamTime = ctx.currentStreamTimeMs() * 1_000_000L;

            if (i.open) {
                i.attached++;
                store.put(key, s.encode());
                return;
            }
            boolean late = at < streamTime - window - GRACE_NANOS;
            // Forget what can no longer matter.
            long horizon = streamTime - 2 * window - GRACE_NANOS;
            i.counted.removeIf(c -> c.at < horizon);
            if (late) {
                if (manual) pull(r, key, kind, id, s, i, at, "manual", List.of(eventId), 1);
                store.put(key, s.encode());
                return;
            }
            // Insert by (at, arrival).
            int pos = i.counted.size();
            while (pos > 0 && i.counted.get(pos - 1).at > at) pos--;
            Counted c = new Counted(at, customer, eventId);
            i.counted.add(pos, c);
            if (manual) {
                pull(r, key, kind, id, s, i, at, "manual", List.of(eventId), 1);
            } else {
                Evidence e = check(i.counted, c);
                if (e != null) pull(r, key, kind, id, s, i, at, "threshold", e.ids, e.customers);
            }
            store.put(key, s.encode());
        }

        record Evidence(List<String> ids, int customers) {}

        /**
         * The qualifying interval [s, s + W] containing c.at that starts
         * earliest, or null. The count of [s, s + W] over s in
         * [c.at - W, c.at] rises only where a complaint enters (s = at - W),
         * so the earliest qualifying start is c.at - W or one of those.
         */
        Evidence check(List<Counted> counted, Counted c) {
            long lo = c.at - window;
            ArrayList<Long> starts = new ArrayList<>();
            starts.add(lo);
            for (Counted x : counted) {
                if (x.at > c.at && x.at <= c.at + window) starts.add(x.at - window);
            }
            for (long s : starts) {
                long e = s + window;
                Set<String> customers = new HashSet<>();
                for (Counted x : counted) if (x.at >= s && x.at <= e) customers.add(x.customer);
                if (customers.size() >= threshold) {
                    return new Evidence(pick(counted, s, e, c), customers.size());
                }
            }
            return null;
        }

        /** andon's pick: one complaint per customer, the pulling one for its own. */
        static List<String> pick(List<Counted> counted, long s, long e, Counted own) {
            Set<String> seen = new HashSet<>();
            seen.add(own.customer);
            ArrayList<String> picked = new ArrayList<>();
            boolean ownPlaced = false;
            for (Counted x : counted) {
                if (x.at < s || x.at > e) continue;
                if (x == own) {
                    picked.add(x.eventId);
                    ownPlaced = true;
                } else if (seen.add(x.customer) && picked.size() + (ownPlaced ? 0 : 1) < EVIDENCE_LISTED) {
                    picked.add(x.eventId);
                }
                if (ownPlaced && picked.size() >= EVIDENCE_LISTED) break;
            }
            return picked;
        }

        void pull(Record<String, byte[]> r, String key, String kind, String id, Subject s, Issue i, long at,
                String trigger, List<String> evidence, int customers) {
            i.andons++;
            i.open = true;
            i.counted.clear();
            String andonId = key + "/" + i.issue + "#" + i.andons;
            String openedAt = format(at);
            if (s.openDelisting == 0) {
                s.delists++;
                ctx.forward(r.withValue(delist(key, kind, id, andonId, openedAt, i.issue, trigger, customers, s.delists)),
                        "delist-commands");
            }
            s.openDelisting++;
            ctx.forward(r.withValue(opened(kind, id, andonId, i.issue, trigger, openedAt, at, evidence, customers)),
                    "work-orders");
        }

        byte[] delist(String key, String kind, String id, String andonId, String issuedAt, String issue, String trigger,
                int customers, int m) {
            try {
                ByteArrayOutputStream b = new ByteArrayOutputStream(320);
                try (JsonGenerator g = FACTORY.createGenerator(b)) {
                    g.writeStartObject();
                    g.writeStringField("command_id", key + "#delist#" + m);
                    g.writeStringField("action", "delist");
                    subject(g, kind, id);
                    g.writeStringField("andon_id", andonId);
                    g.writeStringField("issued_at", issuedAt);
                    g.writeObjectFieldStart("reason");
                    g.writeStringField("issue", issue);
                    g.writeStringField("trigger", trigger);
                    g.writeNumberField("distinct_customers", customers);
                    g.writeNumberField("window_seconds", windowSeconds);
                    g.writeEndObject();
                    g.writeEndObject();
                }
                return b.toByteArray();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        static byte[] opened(String kind, String id, String andonId, String issue, String trigger, String openedAt,
                long at, List<String> evidence, int total) {
            try {
                ByteArrayOutputStream b = new ByteArrayOutputStream(640);
                try (JsonGenerator g = FACTORY.createGenerator(b)) {
                    g.writeStartObject();
                    g.writeStringField("type", "opened");
                    g.writeStringField("andon_id", andonId);
                    subject(g, kind, id);
                    g.writeStringField("issue", issue);
                    g.writeStringField("trigger", trigger);
                    g.writeBooleanField("delisted", true);
                    g.writeStringField("opened_at", openedAt);
                    g.writeArrayFieldStart("evidence");
                    for (String e : evidence) g.writeString(e);
                    g.writeEndArray();
                    g.writeNumberField("evidence_total", total);
                    g.writeArrayFieldStart("steps");
                    long due = at;
                    for (int k = 0; k < ROUTE.length; k++) {
                        due += SLA_SECONDS[k] * NANOS;
                        g.writeStartObject();
                        g.writeNumberField("step", k + 1);
                        g.writeStringField("owner", ROUTE[k]);
                        g.writeStringField("due_at", format(due));
                        g.writeEndObject();
                    }
                    g.writeEndArray();
                    g.writeEndObject();
                }
                return b.toByteArray();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        static void subject(JsonGenerator g, String kind, String id) throws IOException {
            g.writeObjectFieldStart("subject");
            g.writeStringField("kind", kind);
            g.writeStringField("id", id);
            g.writeEndObject();
        }
    }

    // -- time ------------------------------------------------------------------

    /** RFC 3339 with an offset (Z or ±hh:mm), to nanoseconds since 1970. */
    static long parseNanos(String s) {
        OffsetDateTime t = OffsetDateTime.parse(s, DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        Instant i = t.toInstant();
        return Math.addExact(Math.multiplyExact(i.getEpochSecond(), NANOS), i.getNano());
    }

    static final DateTimeFormatter SECONDS = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss").withZone(ZoneOffset.UTC);

    /** As andon writes timestamps: UTC, Z, a fraction of 3, 6 or 9 digits only when there is one. */
    static String format(long nanos) {
        long sec = Math.floorDiv(nanos, NANOS);
        int frac = (int) Math.floorMod(nanos, NANOS);
        String base = SECONDS.format(Instant.ofEpochSecond(sec));
        if (frac == 0) return base + "Z";
        if (frac % 1_000_000 == 0) return base + String.format(".%03dZ", frac / 1_000_000);
        if (frac % 1_000 == 0) return base + String.format(".%06dZ", frac / 1_000);
        return base + String.format(".%09dZ", frac);
    }
}
