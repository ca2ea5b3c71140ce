package counterbench;

import com.alipay.sofa.jraft.RouteTable;
import com.alipay.sofa.jraft.conf.Configuration;
import com.alipay.sofa.jraft.entity.PeerId;
import com.alipay.sofa.jraft.option.CliOptions;
import com.alipay.sofa.jraft.rpc.InvokeCallback;
import com.alipay.sofa.jraft.rpc.RpcClient;
import com.alipay.sofa.jraft.rpc.impl.cli.CliClientServiceImpl;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Closed-loop load: C requests in flight, each answer sends the next, until N are answered. Like
 * the example's client it finds the leader through RouteTable and calls it with invokeAsync.
 * A warm-up of W requests runs first (same loop), then N measured ones. Prints one JSON line.
 *
 * <pre>java counterbench.BenchClient GROUP_ID CONF --c C --n N [--warmup W] [--get] [--timeout-ms T]</pre>
 *
 * An answer with success=false (not leader, leader changed) or a transport error counts in
 * "errors" and the request is sent again to the leader RouteTable knows then; only successful
 * answers count towards N and the latencies (from first send to the successful answer).
 */
public final class BenchClient {
    private final String groupId;
    private final CliClientServiceImpl cli;
    private final RpcClient rpc;
    private final boolean get;
    private final int timeoutMs;
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong checksum = new AtomicLong();
    private volatile PeerId leader;

    private BenchClient(String groupId, CliClientServiceImpl cli, boolean get, int timeoutMs) {
        this.groupId = groupId;
        this.cli = cli;
        this.rpc = cli.getRpcClient();
        this.get = get;
        this.timeoutMs = timeoutMs;
    }

    private void refreshLeader() throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            try {
                if (RouteTable.getInstance().refreshLeader(cli, groupId, 1000).isOk()) {
                    leader = RouteTable.getInstance().selectLeader(groupId);
                    if (leader != null) {
                        return;
                    }
                }
            } catch (java.util.concurrent.TimeoutException e) {
                // try again
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("no leader for group " + groupId);
    }

    /** One phase: {@code total} successful requests with {@code c} in flight; latencies in ns. */
    private long[] phase(int c, int total) throws InterruptedException {
        long[] latNs = new long[total];
        AtomicLong issued = new AtomicLong();
        AtomicLong finished = new AtomicLong();
        CountDownLatch allDone = new CountDownLatch(1);
        Object request = get ? new Messages.GetValueRequest() : new Messages.IncrementAndGetRequest(1);

        final class Slot implements InvokeCallback {
            long startNs;

            void next() {
                if (issued.getAndIncrement() >= total) {
                    return;
                }
                startNs = System.nanoTime();
                send();
            }

            void send() {
                try {
                    rpc.invokeAsync(leader.getEndpoint(), request, this, timeoutMs);
                } catch (Exception e) {
                    complete(null, e);
                }
            }

            @Override
            public void complete(Object result, Throwable err) {
                if (err == null && result instanceof Messages.ValueResponse
                    && ((Messages.ValueResponse) result).success) {
                    long done = finished.getAndIncrement();
                    latNs[(int) done] = System.nanoTime() - startNs;
                    checksum.addAndGet(((Messages.ValueResponse) result).value & 1);
                    if (done + 1 == total) {
                        allDone.countDown();
                    } else {
                        next();
                    }
                    return;
                }
                errors.incrementAndGet();
                if (result instanceof Messages.ValueResponse) {
                    String redirect = ((Messages.ValueResponse) result).redirect;
                    if (redirect != null && RouteTable.getInstance().updateLeader(groupId, redirect)) {
                        leader = RouteTable.getInstance().selectLeader(groupId);
                    }
                }
                // Resend from a fresh thread after a short pause: not from the callback thread.
                new Thread(() -> {
                    try {
                        Thread.sleep(20);
                        if (err != null) {
                            refreshLeader();
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    } catch (RuntimeException e) {
                        // keep the old leader and try again
                    }
                    send();
                }).start();
            }

            @Override
            public Executor executor() {
                return null; // run in the transport's callback thread, as the example does
            }
        }

        int slots = Math.min(c, total);
        for (int i = 0; i < slots; i++) {
            new Slot().next();
        }
        allDone.await();
        return latNs;
    }

    private static double pctMs(long[] sortedNs, double q) {
        int i = (int) Math.min(sortedNs.length - 1, Math.max(0, Math.ceil(q * sortedNs.length) - 1));
        return sortedNs[i] / 1e6;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: BenchClient GROUP_ID CONF --c C --n N [--warmup W] [--get] [--timeout-ms T]");
            System.exit(2);
        }
        String groupId = args[0];
        String confStr = args[1];
        int c = 64;
        int n = 2000;
        int warmup = -1;
        int timeoutMs = 5000;
        boolean get = false;
        for (int i = 2; i < args.length; i++) {
            switch (args[i]) {
                case "--c": c = Integer.parseInt(args[++i]); break;
                case "--n": n = Integer.parseInt(args[++i]); break;
                case "--warmup": warmup = Integer.parseInt(args[++i]); break;
                case "--timeout-ms": timeoutMs = Integer.parseInt(args[++i]); break;
                case "--get": get = true; break;
                default: throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (c < 1 || n < 1) {
            throw new IllegalArgumentException("--c and --n must be at least 1");
        }
        if (warmup < 0) {
            warmup = Math.max(n / 5, 1000); // the JIT needs a few thousand requests
        }
        Configuration conf = new Configuration();
        if (!conf.parse(confStr)) {
            throw new IllegalArgumentException("bad configuration " + confStr);
        }
        RouteTable.getInstance().updateConfiguration(groupId, conf);
        CliClientServiceImpl cli = new CliClientServiceImpl();
        cli.init(new CliOptions());
        BenchClient bench = new BenchClient(groupId, cli, get, timeoutMs);
        bench.refreshLeader();

        if (warmup > 0) {
            bench.phase(c, warmup);
        }
        long warmupErrors = bench.errors.getAndSet(0);
        long t0 = System.nanoTime();
        long[] lat = bench.phase(c, n);
        long wallNs = System.nanoTime() - t0;
        Arrays.sort(lat);
        String json = String.format(Locale.ROOT,
            "{\"system\":\"sofajraft\",\"workload\":\"%s\",\"c\":%d,\"n\":%d,\"warmup\":%d,"
                + "\"opsPerSec\":%.0f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"maxMs\":%.3f,\"durationMs\":%.1f,"
                + "\"errors\":%d,\"warmupErrors\":%d,\"leader\":\"%s\"}",
            get ? "get" : "incr", c, n, warmup, n / (wallNs / 1e9), pctMs(lat, 0.5), pctMs(lat, 0.99),
            lat[lat.length - 1] / 1e6, wallNs / 1e6, bench.errors.get(), warmupErrors, bench.leader);
        System.out.println(json);
        cli.shutdown();
        System.exit(0);
    }
}
