package counterbench;

import java.io.Serializable;

/**
 * Wire messages of the counter service. Plain Serializable classes: SOFAJRaft's default
 * transport (bolt) encodes objects it has no custom serializer for with Hessian, which is also
 * what happens to the example's own request classes on bolt.
 */
public final class Messages {
    private Messages() {}

    /** Adds {@code delta} to the counter through the Raft log and answers the new value. */
    public static final class IncrementAndGetRequest implements Serializable {
        private static final long serialVersionUID = 1L;
        public long delta;

        public IncrementAndGetRequest() {}

        public IncrementAndGetRequest(long delta) {
            this.delta = delta;
        }
    }

    /** Reads the counter; with {@code readOnlySafe} through a ReadIndex round (linearizable). */
    public static final class GetValueRequest implements Serializable {
        private static final long serialVersionUID = 1L;
        public boolean readOnlySafe = true;
    }

    /** The answer to both requests: the value, or why not and where the leader is. */
    public static final class ValueResponse implements Serializable {
        private static final long serialVersionUID = 1L;
        public long value;
        public boolean success;
        /** Leader's address ("ip:port") when this node is not the leader, else null. */
        public String redirect;
        public String errorMsg;

        static ValueResponse ok(long value) {
            ValueResponse r = new ValueResponse();
            r.success = true;
            r.value = value;
            return r;
        }

        static ValueResponse fail(String errorMsg, String redirect) {
            ValueResponse r = new ValueResponse();
            r.success = false;
            r.errorMsg = errorMsg;
            r.redirect = redirect;
            return r;
        }
    }
}
