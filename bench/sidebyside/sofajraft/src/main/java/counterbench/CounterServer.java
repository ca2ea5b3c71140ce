package counterbench;

import com.alipay.sofa.jraft.Node;
import com.alipay.sofa.jraft.RaftGroupService;
import com.alipay.sofa.jraft.Status;
import com.alipay.sofa.jraft.closure.ReadIndexClosure;
import com.alipay.sofa.jraft.conf.Configuration;
import com.alipay.sofa.jraft.entity.PeerId;
import com.alipay.sofa.jraft.entity.Task;
import com.alipay.sofa.jraft.option.NodeOptions;
import com.alipay.sofa.jraft.rpc.RaftRpcServerFactory;
import com.alipay.sofa.jraft.rpc.RpcContext;
import com.alipay.sofa.jraft.rpc.RpcProcessor;
import com.alipay.sofa.jraft.rpc.RpcServer;
import java.io.File;
import java.nio.ByteBuffer;

/**
 * One member of the counter group, in the shape of SOFAJRaft's counter example: a RaftGroupService
 * on a bolt RpcServer that also serves IncrementAndGetRequest and GetValueRequest.
 *
 * <pre>java counterbench.CounterServer DATA_DIR GROUP_ID SELF_IP:PORT CONF</pre>
 *
 * CONF is the initial configuration, "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083". The log
 * (RocksDB), the Raft meta file and snapshots go under DATA_DIR; RaftOptions.sync is left at its
 * default (true): every log append is fsynced before it counts.
 */
public final class CounterServer {
    private final CounterStateMachine fsm = new CounterStateMachine();
    private final RaftGroupService group;
    private final Node node;

    CounterServer(String dataDir, String groupId, PeerId self, Configuration conf) {
        new File(dataDir).mkdirs();
        RpcServer rpcServer = RaftRpcServerFactory.createRaftRpcServer(self.getEndpoint());
        rpcServer.registerProcessor(new IncrementAndGetProcessor());
        rpcServer.registerProcessor(new GetValueProcessor());

        NodeOptions opts = new NodeOptions();
        opts.setElectionTimeoutMs(1000);
        opts.setDisableCli(false);
        opts.setSnapshotIntervalSecs(30);
        opts.setInitialConf(conf);
        opts.setFsm(fsm);
        opts.setLogUri(dataDir + File.separator + "log");
        opts.setRaftMetaUri(dataDir + File.separator + "raft_meta");
        opts.setSnapshotUri(dataDir + File.separator + "snapshot");
        if (!opts.getRaftOptions().isSync()) {
            throw new IllegalStateException("RaftOptions.sync must stay on for this comparison");
        }
        group = new RaftGroupService(groupId, self, opts, rpcServer);
        node = group.start();
    }

    private String redirect() {
        PeerId leader = node.getLeaderId();
        return leader == null || leader.isEmpty() ? null : leader.getEndpoint().toString();
    }

    /** Appends the delta to the log; answers once it is committed and applied here. */
    private final class IncrementAndGetProcessor implements RpcProcessor<Messages.IncrementAndGetRequest> {
        @Override
        public void handleRequest(RpcContext ctx, Messages.IncrementAndGetRequest req) {
            if (!fsm.isLeader()) {
                ctx.sendResponse(Messages.ValueResponse.fail("not leader", redirect()));
                return;
            }
            ByteBuffer data = ByteBuffer.allocate(8);
            data.putLong(req.delta).flip();
            node.apply(new Task(data, new CounterStateMachine.IncrementClosure() {
                @Override
                public void run(Status status) {
                    ctx.sendResponse(status.isOk()
                        ? Messages.ValueResponse.ok(value)
                        : Messages.ValueResponse.fail(status.getErrorMsg(), redirect()));
                }
            }));
        }

        @Override
        public String interest() {
            return Messages.IncrementAndGetRequest.class.getName();
        }
    }

    /** Linearizable read: a ReadIndex round (ReadOnlySafe, the default), then the local value. */
    private final class GetValueProcessor implements RpcProcessor<Messages.GetValueRequest> {
        @Override
        public void handleRequest(RpcContext ctx, Messages.GetValueRequest req) {
            if (!req.readOnlySafe) {
                ctx.sendResponse(Messages.ValueResponse.ok(fsm.value()));
                return;
            }
            node.readIndex(new byte[0], new ReadIndexClosure() {
                @Override
                public void run(Status status, long index, byte[] reqCtx) {
                    ctx.sendResponse(status.isOk()
                        ? Messages.ValueResponse.ok(fsm.value())
                        : Messages.ValueResponse.fail(status.getErrorMsg(), redirect()));
                }
            });
        }

        @Override
        public String interest() {
            return Messages.GetValueRequest.class.getName();
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 4) {
            System.err.println("usage: CounterServer DATA_DIR GROUP_ID SELF_IP:PORT CONF");
            System.exit(2);
        }
        PeerId self = new PeerId();
        if (!self.parse(args[2])) {
            throw new IllegalArgumentException("bad server id " + args[2]);
        }
        Configuration conf = new Configuration();
        if (!conf.parse(args[3])) {
            throw new IllegalArgumentException("bad configuration " + args[3]);
        }
        CounterServer server = new CounterServer(args[0], args[1], self, conf);
        Runtime.getRuntime().addShutdownHook(new Thread(server.group::shutdown));
        System.out.println("started " + self + " in group " + args[1]);
        server.group.join();
    }
}
