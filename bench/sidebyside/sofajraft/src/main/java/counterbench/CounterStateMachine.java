package counterbench;

import com.alipay.sofa.jraft.Closure;
import com.alipay.sofa.jraft.Iterator;
import com.alipay.sofa.jraft.Status;
import com.alipay.sofa.jraft.core.StateMachineAdapter;
import com.alipay.sofa.jraft.error.RaftError;
import com.alipay.sofa.jraft.storage.snapshot.SnapshotReader;
import com.alipay.sofa.jraft.storage.snapshot.SnapshotWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.atomic.AtomicLong;

/** The replicated counter: each log entry is an 8-byte big-endian delta. */
public final class CounterStateMachine extends StateMachineAdapter {
    private static final String SNAPSHOT_FILE = "counter";

    private final AtomicLong value = new AtomicLong();
    private final AtomicLong leaderTerm = new AtomicLong(-1);

    /** The value after the last applied entry. */
    public long value() {
        return value.get();
    }

    /** True while this node's state machine runs as the leader. */
    public boolean isLeader() {
        return leaderTerm.get() > 0;
    }

    @Override
    public void onApply(Iterator iter) {
        while (iter.hasNext()) {
            ByteBuffer data = iter.getData();
            long delta = data.remaining() >= 8 ? data.getLong(data.position()) : 0;
            long now = value.addAndGet(delta);
            Closure done = iter.done();
            if (done instanceof IncrementClosure) {
                ((IncrementClosure) done).value = now;
                done.run(Status.OK());
            } else if (done != null) {
                done.run(Status.OK());
            }
            iter.next();
        }
    }

    @Override
    public void onSnapshotSave(SnapshotWriter writer, Closure done) {
        long snap = value.get();
        Path file = Paths.get(writer.getPath(), SNAPSHOT_FILE);
        try {
            Files.write(file, Long.toString(snap).getBytes(StandardCharsets.UTF_8));
            if (writer.addFile(SNAPSHOT_FILE)) {
                done.run(Status.OK());
            } else {
                done.run(new Status(RaftError.EIO, "cannot add %s to snapshot", file));
            }
        } catch (IOException e) {
            done.run(new Status(RaftError.EIO, "cannot write %s: %s", file, e.getMessage()));
        }
    }

    @Override
    public boolean onSnapshotLoad(SnapshotReader reader) {
        if (reader.getFileMeta(SNAPSHOT_FILE) == null) {
            return false;
        }
        try {
            String s = new String(
                Files.readAllBytes(Paths.get(reader.getPath(), SNAPSHOT_FILE)), StandardCharsets.UTF_8);
            value.set(Long.parseLong(s.trim()));
            return true;
        } catch (IOException | NumberFormatException e) {
            return false;
        }
    }

    @Override
    public void onLeaderStart(long term) {
        leaderTerm.set(term);
        super.onLeaderStart(term);
    }

    @Override
    public void onLeaderStop(Status status) {
        leaderTerm.set(-1);
        super.onLeaderStop(status);
    }

    /** Closure of one increment: the state machine stores the new value before running it. */
    public abstract static class IncrementClosure implements Closure {
        long value;
    }
}
