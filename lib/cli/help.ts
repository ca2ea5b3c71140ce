/**
 * Help texts for `counter` and each of its subcommands.
 *
 * Each text has a usage line, a paragraph saying what the command does, every option with its
 * default, an example and, for commands that talk to a cluster, the exit codes. The texts are
 * checked against golden files in `snapshots/cli/`.
 *
 * @module
 */

import {
  CERTS_DAYS_DEFAULT,
  DEFAULT_BASE_PORT,
  DEFAULT_BENCH_GROUP_PREFIX,
  DEFAULT_BENCH_OPS,
  DEFAULT_BOOTSTRAP_TIMEOUT_SECS,
  DEFAULT_ELECTION_TIMEOUT_MS,
  DEFAULT_FRAME_TIMEOUT_SECS,
  DEFAULT_GROUP,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_IDLE_TIMEOUT_SECS,
  DEFAULT_LOG_SEGMENT_BYTES,
  DEFAULT_PEERS,
  DEFAULT_SNAPSHOT_INTERVAL_SECS,
  DEFAULT_SNAPSHOT_LOG_BYTES,
  DEFAULT_SNAPSHOT_LOG_ENTRIES,
  DEFAULT_SNAPSHOT_RETAIN_BYTES,
  DEFAULT_SNAPSHOT_RETAIN_ENTRIES,
  DEFAULT_TIMEOUT_MS,
  LIMITS,
  PEERS_ENV,
  TLS_CA_ENV,
  TOKEN_FILE_ENV,
} from "./args.ts";
import type { CommandName } from "./usage_error.ts";
import { HEALTH_APPLY_LAG_MAX } from "../counter/metrics.ts";

const CLIENT_EXIT_CODES = `Exit codes:
  0  success
  1  failed, and certainly not applied
  2  usage error
  3  outcome unknown: the request was sent but no answer came before the
     deadline; it may or may not have been applied`;

const PEERS_OPTION = `  --peers LIST        the group's nodes, as HOST:PORT,HOST:PORT,...
                      (default: \$${PEERS_ENV}, else
                      ${DEFAULT_PEERS.join(",")})`;

const SECURITY_OPTIONS = `  --tls-ca FILE       connect with TLS, trusting this CA certificate
                      (default: \$${TLS_CA_ENV}, else plain TCP)
  --token-file FILE   prove this client or admin token on each connection
                      (default: \$${TOKEN_FILE_ENV}, else none)`;

const CLIENT_OPTIONS = `${PEERS_OPTION}
  --group NAME        Raft group name (default: ${DEFAULT_GROUP})
  --json              print one JSON object instead of plain text
  --timeout-ms N      give up after N ms, retries included
                      (default: ${DEFAULT_TIMEOUT_MS})
${SECURITY_OPTIONS}
  -h, --help          show this help`;

const TOP = `counter: a replicated, strongly consistent 64-bit counter

Usage:
  counter COMMAND [OPTIONS]
  counter help [COMMAND]
  counter --help
  counter --version       (or -V, or 'counter version')

A group of servers keeps one signed 64-bit counter and agrees on every
change with the Raft consensus algorithm, so every acknowledged increment
survives and every read sees all increments acknowledged before it, as
long as a majority of the servers is up. Modelled on SOFAJRaft's counter
example.

Commands:
  serve   run one node of a counter group
  incr    add a number to the counter and print the new value
  get     print the counter's current value
  demo    start a local 3-node cluster and run a demo workload
  bench   measure increments per second against a running group
  help    show help for a command

Admin commands:
  status    show each node's role, term, log indexes and value
  leader    name the leader, move leadership, or balance it over groups
  peers     list, add, remove or promote members
  groups    list, create or remove the groups the nodes serve
  snapshot  make one node take a snapshot now
  health    check that every node knows a leader and is caught up
  backup    save a consistent snapshot of the group to a file
  restore   seed a new node's data dir from a backup file
  inspect   show a stopped node's data dir: meta, snapshot, log range
  recover   force a stopped survivor of a lost majority into a new group
  certs     create a CA and a node certificate for TLS

Options:
  -h, --help    show this help
  -V, --version print the version

Example:
  counter demo

Run 'counter help COMMAND' or 'counter COMMAND --help' for a command's
options.
`;

const SERVE = `Usage: counter serve --data DIR --id HOST:PORT --conf HOST:PORT,... [OPTIONS]
       counter serve --data DIR --id HOST:PORT --join HOST:PORT,... [OPTIONS]

Runs one node of a counter group until SIGINT or SIGTERM. The node
listens on its --id address (or on --listen), binding it before it
writes anything under --data; keeps its log, vote and snapshots under
--data; and takes part in elections with the other members listed in
--conf. Start one such process for every member of --conf; the group
serves requests once a majority of them is up. With --groups, the one
process and port serve several groups, each with its own log, leader and
membership under DIR/groups/NAME/.

Options:
  --data DIR                  this node's data directory (required)
  --id HOST:PORT              this node's id: the address peers and clients
                              use to reach it (required)
  --listen HOST:PORT          the address to listen on, when it is not --id
                              (e.g. 0.0.0.0:8081, or behind a port mapping)
  --conf HOST:PORT,...        every member of a new group, --id included
                              (used only when DIR is empty)
  --join HOST:PORT,...        instead of --conf: members of an existing group;
                              this empty node does not campaign and waits for
                              'counter peers add HOST:PORT' (it joins as a
                              learner and is promoted once caught up)
  --group NAME                Raft group name (default: ${DEFAULT_GROUP})
  --groups NAME,...           serve these groups, each with its own log,
                              leader and membership (default: --group);
                              a data dir of one group at DIR moves to
                              DIR/groups/NAME/ at the first start
  --election-timeout-ms N     election timeout, greater than the heartbeat
                              interval (default: ${DEFAULT_ELECTION_TIMEOUT_MS})
  --heartbeat-interval-ms N   leader heartbeat interval (default: ${DEFAULT_HEARTBEAT_INTERVAL_MS})
  --snapshot-interval-secs N  seconds between snapshots, 0 for never
                              (default: ${DEFAULT_SNAPSHOT_INTERVAL_SECS})
  --snapshot-log-entries N    also snapshot once the log has grown by N
                              entries since the last one, 0 for never
                              (default: ${DEFAULT_SNAPSHOT_LOG_ENTRIES})
  --snapshot-retain-entries N entries kept below a snapshot when the log is
                              compacted, for slightly lagging followers
                              (default: ${DEFAULT_SNAPSHOT_RETAIN_ENTRIES})
  --snapshot-log-bytes N      also snapshot once N bytes of entries have been
                              applied since the last one, 0 for never
                              (default: ${DEFAULT_SNAPSHOT_LOG_BYTES}, 4 MiB)
  --snapshot-retain-bytes N   at most N bytes of entries kept below a
                              snapshot (the tail also stops at
                              --snapshot-retain-entries)
                              (default: ${DEFAULT_SNAPSHOT_RETAIN_BYTES}, 1 MiB)
  --log-segment-bytes N       size at which the log starts a new segment
                              file (default: ${DEFAULT_LOG_SEGMENT_BYTES})
  --bootstrap-timeout-secs N  an empty node started with --conf first asks
                              every other member whether it ever heard of
                              --id, and refuses to start if one did (the
                              node lost its data: replace it); it waits at
                              most N s for all to answer, 0 for ever
                              (default: ${DEFAULT_BOOTSTRAP_TIMEOUT_SECS})
  --idle-timeout-secs N       close a connection silent this long that awaits
                              no reply, 0 for never (default: ${DEFAULT_IDLE_TIMEOUT_SECS})
  --frame-timeout-secs N      close a connection whose frame is not whole
                              this long after its first byte (default: ${DEFAULT_FRAME_TIMEOUT_SECS})
  --log-level LEVEL           debug, info, warn or error (default: info)
  --log-format FORMAT         text or json (default: text)
  --metrics-addr HOST:PORT    serve /metrics (Prometheus), /health and
                              /status over HTTP there (default: off)
  --tls-cert FILE             serve TLS with this certificate (PEM); needs
                              --tls-key and --tls-ca (see 'counter certs')
  --tls-key FILE              the certificate's private key (PEM)
  --tls-ca FILE               CA certificate trusted when dialling peers
  --cluster-token-file FILE   secret shared by the members: peers prove it
                              to one another before any Raft message
                              (default: none; peers unauthenticated)
  --client-token-file FILE    token clients must prove for incr, get,
                              status and peers (default: none)
  --admin-token-file FILE     token clients must prove for membership,
                              leader transfer, snapshot and backup; it
                              also covers client ops (default: none)
  -h, --help                  show this help

Without tokens, anyone who reaches the port may change the counter and
the membership; the node logs a warning. See docs/SECURITY.md.

Examples:
  counter serve --data /tmp/counter/n1 --id 127.0.0.1:8081 \\
    --conf 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083
  counter serve --data /tmp/n1 --id 127.0.0.1:8081 --conf ... \\
    --tls-cert certs/node.crt --tls-key certs/node.key --tls-ca certs/ca.crt \\
    --cluster-token-file cluster.token --client-token-file client.token \\
    --admin-token-file admin.token

Exit codes:
  0  stopped by SIGINT or SIGTERM
  1  failed (for example: the port is in use, or the data directory is
     locked or corrupt); a port that cannot be bound leaves DIR untouched
  2  usage error
`;

const INCR = `Usage: counter incr DELTA [OPTIONS]

Adds DELTA to the counter and prints the counter's new value. DELTA is a
whole number from -9223372036854775808 to 9223372036854775807; a negative
DELTA may be written as 'counter incr -5' or 'counter incr -- -5'. The
request goes to the group's leader and is answered once a majority of
the group has stored it.

Options:
${CLIENT_OPTIONS}

Output: the new value on one line; with --json, one line
{"value":N,"leader":"HOST:PORT"}, where N is a JSON number when its
magnitude is at most 2^53-1 and a string otherwise.

Example:
  counter incr 5 --peers 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083

${CLIENT_EXIT_CODES}
`;

const GET = `Usage: counter get [OPTIONS]

Prints the counter's current value. By default the read is linearizable:
the value includes every increment acknowledged before the read began.

Options:
  --consistency LEVEL   how the read is served (default: linearizable):
      linearizable  the leader confirms it still leads with one round of
                    heartbeats (ReadIndex; concurrent reads share a round)
      lease         the leader answers from its lease, without a round;
                    linearizable as long as no node's clock runs more than
                    10% fast or slow over an election timeout
      follower      any node answers: a follower asks the leader for the
                    read index and waits until it has applied it; still
                    linearizable, and it spreads reads over the group
      stale         any node answers from its own state at once; the value
                    may be behind (labelled "stale" in the output)
${CLIENT_OPTIONS}

Output: the value on one line (followed by "(stale, from HOST:PORT)" for
stale reads); with --json, one line {"value":N,"leader":"HOST:PORT"},
plus "stale": true and "node" for stale reads, where N is a JSON number
when its magnitude is at most 2^53-1 and a string otherwise.

Examples:
  counter get --json
  counter get --consistency follower --peers 127.0.0.1:8082

${CLIENT_EXIT_CODES}
`;

const DEMO = `Usage: counter demo [OPTIONS]

Starts a local 3-node cluster on 127.0.0.1, with the nodes as child
processes listening on three consecutive ports, runs the demo workload
against it (the 1000 increments of SOFAJRaft's counter example, all in
flight at once), checks the total, and stops the nodes. Nothing is sent
until each node listens and answers as the child just started: when a
port is taken (say, by a cluster already running there) the demo refuses
and names it; pick other ports with --base-port.

Options:
  --data DIR       parent directory of the nodes' data directories and
                   logs (default: a new temporary directory, removed after
                   a successful run; a directory given here is kept)
  --base-port N    first of the three ports (default: ${DEFAULT_BASE_PORT})
  --keep           keep the cluster running after the workload, until
                   interrupted, to try 'counter incr' and 'counter get'
  -h, --help       show this help

Example:
  counter demo --keep

Exit codes:
  0  success
  1  failed
  2  usage error
`;

const BENCH = `Usage: counter bench [OPTIONS]

Measures a group's throughput and latency, then checks that the counter
grew by exactly what the acknowledged increments add up to (reading it,
linearizably, before and after; no other client may write meanwhile).

The default run is SOFAJRaft's counter client: ${DEFAULT_BENCH_OPS} increments with
deltas 0 to ${DEFAULT_BENCH_OPS - 1}, all in flight at once, printed as 'N ops, cost: X ms'.
With --concurrency C, C workers each send one request at a time and the
next when it is answered (a closed loop), until --ops requests have been
sent or --duration seconds have passed; increments then add 1.

Options:
${PEERS_OPTION}
  --group NAME        Raft group name (default: ${DEFAULT_GROUP})
  --groups N          spread the requests over N groups, round robin,
                      through one client: --group, then PREFIX1 to
                      PREFIX(N-1); each group is checked on its own
                      (1 to ${LIMITS.benchGroups.max}, default: 1)
  --group-prefix P    with --groups: the numbered groups' prefix
                      (default: ${DEFAULT_BENCH_GROUP_PREFIX}, so ${DEFAULT_GROUP}, ${DEFAULT_BENCH_GROUP_PREFIX}1, ${DEFAULT_BENCH_GROUP_PREFIX}2, ...)
  --local             start a local 3-node cluster on free ports with
                      temporary data (serving every group of --groups),
                      run against it, and stop it; also prints each
                      node's resident memory; not with --peers
  --tls               with --local: the cluster serves TLS (certificates
                      made for the run) and the client connects with it
  --ops N             requests to measure (default: ${DEFAULT_BENCH_OPS}); without
                      --concurrency at most ${LIMITS.burstOps.max}
  --concurrency C     run a closed loop of C workers, 1 to ${LIMITS.concurrency.max} and at
                      most --ops (default: none; every increment at once)
  --duration S        with --concurrency: run for S seconds instead of
                      --ops requests (1 to ${LIMITS.durationSecs.max})
  --mix incr=P,get=Q  with --concurrency: percentages of increments and
                      reads, adding up to 100 (default: incr=100)
  --consistency C     reads of --mix: linearizable, lease, follower or stale
                      (default: linearizable)
  --warmup N          send N requests first, not measured (default: 0);
                      without --concurrency as bursts of --ops increments
  --json              print one JSON object instead of plain text
  --timeout-ms N      deadline of each request, retries included
                      (default: ${DEFAULT_TIMEOUT_MS})
${SECURITY_OPTIONS}
  -h, --help          show this help

Output: throughput (acknowledged requests per second); latency p50, p90,
p99, p99.9 and max, per operation when --mix has several; errors by
code; the value before and after. Latencies are of acknowledged requests,
to within 1%. Runs longer than a second show progress on stderr. With
--groups, the figures are of all groups together (values summed), then
one row per group (throughput, p50, p99, growth, check, leader); --json
adds "groups":[{"name","ops","ok","opsPerSec","latencyMs","valueBefore",
"valueAfter","verified","leader",...}].

Examples:
  counter bench --local
  counter bench --concurrency 64 --duration 10 --mix incr=90,get=10
  counter bench --local --ops 2000 --concurrency 64 --json
  counter bench --local --groups 8 --concurrency 64 --duration 10

Exit codes:
  0  success: every request acknowledged, and the counter checked
  1  some requests failed, certainly without effect, or the check failed
  2  usage error
  3  some outcomes unknown: requests were sent but no answer came before
     the deadline; they may or may not have been applied
`;

// Admin commands that ask one node at a time name their nodes themselves, so no --peers.
const STATUS = `Usage: counter status [OPTIONS]

Asks every node of --peers directly for its state. Prints a summary line
(leader, voters up against the quorum, health), then one row per node:
its id, Raft role, term, commit index, applied index, last log index,
snapshot index and counter value. The value is the node's own applied
state: current on the leader, marked (behind) on a node whose applied
index is behind the leader's commit index. A node that does not answer is
shown as down. When the nodes serve several groups (serve --groups), it
then prints how many groups each node leads, whether that is balanced
(each leads floor(G/N) or ceil(G/N)), and each group's leader and term.

Options:
${CLIENT_OPTIONS}

Output: a summary line and an aligned table; with --json, one line
{"leader","term","votersUp","voters","quorum","healthy","nodes":[...]}
with one object per node of --peers, either {"node","ok":true,"id",
"role","term","leader","commit","applied","lastIndex","snapshotIndex",
"value","voters","learners"} or {"node","ok":false,"reachable","error"};
with several groups also "groups":[{"group","leader","term"}],
"leadersPerNode":{"HOST:PORT":N} and "balanced".

Example:
  counter status --peers 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083

Exit codes:
  0  a leader answers and a quorum of voters is up
  1  no leader, or no quorum; the reason is on stderr
  2  usage error
`;

const LEADER = `Usage: counter leader [OPTIONS]
       counter leader transfer HOST:PORT [OPTIONS]
       counter leader balance [OPTIONS]

'counter leader' names the group's leader: it asks every node of --peers
for its status and prints the leader that the nodes in the latest term
name. While no leader is known (an election is under way) it asks again,
until --timeout-ms.

'counter leader transfer HOST:PORT' moves the leadership to the voter
HOST:PORT: the leader brings HOST:PORT up to date and hands over, and
the command prints the new leader once HOST:PORT leads.

'counter leader balance' spreads the leaders of every group the nodes of
--peers serve (serve --groups) evenly over each group's voters, so that
each voter leads floor(G/N) or ceil(G/N) of G groups when their voters
allow it: it asks each node which groups it leads, moves the fewest
leaders with a transfer per group (--group does not apply), and prints
the leaders per node before and after.

Options:
${CLIENT_OPTIONS}

Output: the leader's HOST:PORT; with --json, one line
{"leader": "HOST:PORT", "term": N}, or {"leader": "HOST:PORT"} after a
transfer. balance prints 'before: NODE N, ...', each move 'GROUP: FROM ->
TO', and 'after: NODE N, ...'; with --json, one line {"groups","before",
"after","balanced","moves":[{"group","from","to","outcome"}],...}.

Examples:
  counter leader
  counter leader transfer 127.0.0.1:8082
  counter leader balance --peers 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083

Exit codes:
  0  success
  1  failed: no leader known, or a transfer was refused (balance: or a
     node did not answer)
  2  usage error
  3  outcome unknown: the transfer was sent but no answer came before the
     deadline; leadership may still move
`;

const PEERS = `Usage: counter peers [list] [OPTIONS]
       counter peers add HOST:PORT [--learner] [OPTIONS]
       counter peers remove HOST:PORT [OPTIONS]
       counter peers promote HOST:PORT [OPTIONS]

Shows and changes the group's membership. Changes go to the leader, one
at a time, are answered once the group has committed them, and print the
new configuration: the voters, then the learners.

Subcommands:
  list      every member with its role (leader, follower or learner) and,
            as the leader sees it, the last log index it holds (MATCH),
            how many entries it is behind (LAG) and how the leader sends
            it the log (STATE); the default
  add       add a node; start it first with 'counter serve --join'. It
            joins as a learner and becomes a voter once it has caught up;
            the command answers after that. With --learner it stays a
            learner
  remove    remove a member, voter or learner
  promote   make a learner a voter

A group that has lost its majority for good is recovered with
'counter recover', on one stopped survivor (see 'counter recover --help').

Options:
  --learner           add: keep the new node a learner
${CLIENT_OPTIONS}

Output: list prints a table; add, remove and promote the new
configuration. With --json, one JSON object.

Examples:
  counter peers list
  counter peers add 127.0.0.1:8084
  counter peers remove 127.0.0.1:8083

Exit codes:
  0  success
  1  failed, and certainly not applied
  2  usage error
  3  outcome unknown: the change was sent but no answer came before the
     deadline; it may or may not have been applied
`;

const GROUPS = `Usage: counter groups [list] [OPTIONS]
       counter groups create NAME [--voters HOST:PORT,...] [OPTIONS]
       counter groups remove NAME [OPTIONS]

Shows and changes the set of groups the nodes serve (see 'counter serve
--groups'). Each node is asked directly; a change is made on every node
and recorded in its data dir, so that a restart serves the same groups.

Subcommands:
  list      every node of --peers with each group it serves, its role in
            it, the leader it knows and the term; the default
  create    start a new group NAME on every node of --voters (default:
            --peers), with those nodes as its initial voters; it elects
            its own leader. Answers once every voter has started it
  remove    stop group NAME on every node of --peers and move its data
            aside to DATA/removed/NAME.TIMESTAMP; its value is gone from
            service (a node's last group cannot be removed)

Options:
  --voters LIST       create: the new group's members (default: --peers)
${CLIENT_OPTIONS}

create and remove need the admin token when the nodes have tokens.
--group names the group the request travels in (any group the nodes
serve; it does not matter which).

Output: a table, or one JSON object with --json.

Examples:
  counter groups create orders
  counter groups list
  counter groups remove orders

Exit codes:
  0  success on every node
  1  failed on some node
  2  usage error
  3  outcome unknown on some node: no answer came before the deadline
`;

const SNAPSHOT = `Usage: counter snapshot --peer HOST:PORT [OPTIONS]
       counter snapshot [--peers HOST:PORT,...] [OPTIONS]

Makes the node HOST:PORT (or every node of --peers) write a snapshot of
its applied state now, and compact its log below it (keeping the tail its
--snapshot-retain-entries asks for). Prints the snapshot's log index:
when nothing was applied since the node's last snapshot, the index of
that one.

Options:
  --peer HOST:PORT    the one node to take a snapshot on
${CLIENT_OPTIONS}

Output: with --peer, the snapshot's index; else one row per node, NODE
and INDEX (or the error). With --json, one line {"node","snapshotIndex"}
with --peer, else {"nodes":[{"node","snapshotIndex"} or {"node","error"}]}.

Examples:
  counter snapshot --peer 127.0.0.1:8081
  counter snapshot --peers 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083

Exit codes:
  0  success
  1  failed
  2  usage error
  3  outcome unknown: no answer came before the deadline; the node may
     still write the snapshot
`;

const HEALTH = `Usage: counter health [OPTIONS]

Asks every node of --peers directly for its state and prints one line per
node: healthy when it knows a leader and has applied within
${HEALTH_APPLY_LAG_MAX} entries of its commit index, else unhealthy with the reason.
The same rule answers GET /health on a node's --metrics-addr.

Options:
${CLIENT_OPTIONS}

Output: one line per node, "HOST:PORT is healthy: ..." or "HOST:PORT is
unhealthy: ..."; with --json, one line {"endpoints": [...]} with
{"node", "healthy", "reason", "tookMs"} per node.

Example:
  counter health --peers 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083

Exit codes:
  0  every node is healthy
  1  at least one node is unhealthy or did not answer
  2  usage error
`;

const BACKUP = `Usage: counter backup --out FILE [OPTIONS]

Asks the leader for a consistent snapshot of the group and writes it to
FILE. The leader confirms its leadership and waits until it has applied
every increment acknowledged before the request, then sends its state
(value, client sessions, configuration, index, term) in the snapshot file
format, whose CRC-32C covers every byte. The file is checked whole, then
written atomically (temp file, fsync, rename). Restore it with
'counter restore'.

Options:
  --out FILE          the file to write (required)
  --force             replace FILE if it exists
${CLIENT_OPTIONS}

Output: the snapshot's index, term, value and size, and the file's
SHA-256; with --json, one line {"file", "node", "index", "term",
"voters", "learners", "value", "sessions", "bytes", "sha256"}.

Example:
  counter backup --peers 127.0.0.1:8081,127.0.0.1:8082 --out counter.snap

Exit codes:
  0  FILE written
  1  failed; FILE untouched
  2  usage error
  3  no answer before the deadline; FILE untouched
`;

const RESTORE = `Usage: counter restore --data DIR --from FILE --id HOST:PORT
                       --conf HOST:PORT,... [OPTIONS]

Seeds the empty (or missing) data dir DIR of a node of a NEW group from
a backup file written by 'counter backup'. The file's checksum is checked
first. DIR then holds the backup's snapshot (value, client sessions,
index, term) with --conf as the group's configuration, and an empty log
after it. Restore every member of --conf from the same FILE with the same
--conf, then start each with 'counter serve': they elect a leader and
carry on from the backup's value. Nodes added later join empty with
'serve --join' and 'counter peers add'.

Options:
  --data DIR            the new node's data dir; must be empty (required)
  --from FILE           the backup file (required)
  --id HOST:PORT        the new node's id (required)
  --conf HOST:PORT,...  every member of the new group, --id included
                        (required)
  --group NAME          Raft group name (default: ${DEFAULT_GROUP})
  --json                print one JSON object instead of plain text
  -h, --help            show this help

Example:
  counter restore --data /tmp/r1 --from counter.snap --id 127.0.0.1:9081
    --conf 127.0.0.1:9081,127.0.0.1:9082,127.0.0.1:9083

Exit codes:
  0  restored
  1  failed: bad file, DIR not empty, or a write error
  2  usage error
`;

const INSPECT = `Usage: counter inspect --data DIR [--json]

Prints what the data dir DIR holds, read offline: the meta file (node
id, group, term, vote), the newest snapshot (index, term, configuration,
value, client sessions) and the log (first and last index, segments).
It takes no lock and writes nothing, so it also works on a running
node's dir; it then says the dir is in use, as the figures may change
while it reads. Damaged files are reported, not repaired.

Options:
  --data DIR    the data dir to read (required)
  --json        print one JSON object instead of plain text
  -h, --help    show this help

Example:
  counter inspect --data /tmp/server1

Exit codes:
  0  every file read back intact
  1  no meta file, or a damaged file (the report says which)
  2  usage error
`;

const RECOVER = `Usage: counter recover --data DIR --force-new-cluster [--yes] [--json]

The last resort for a group that has lost its majority for good (etcd's
--force-new-cluster). Run it on ONE surviving node, stopped: the one
with the highest last log term, then the highest last index. It keeps
every entry in DIR, appends a configuration naming only this node as a
voter, in a new term, and gives DIR a new random cluster id. Restarted
with 'counter serve', the node is a one-node group: it elects itself and
serves everything it holds. Then, for every other machine: wipe its data
dir, start it with 'counter serve --join', and add it with
'counter peers add'. A member of the old group that was not wiped has
the old cluster id and is refused.

Increments that only the lost members held are gone for good, and
entries the survivor held that the old group never committed are
committed. It runs on the data dir alone, never over the network, and
refuses a dir in use by a running node.

Without --yes it prints what it will do and asks for confirmation on the
terminal; it refuses to run when stdin is not a terminal.

Options:
  --data DIR            the stopped node's data directory (required)
  --force-new-cluster   required: say what it does
  --yes                 do not ask for confirmation
  --json                print one JSON object once done

Output: what was done and the next steps; with --json, one line
{"node": "HOST:PORT", "index": N, "term": N, "clusterId": "...", ...}.

Below, 127.0.0.1:8081 survives and 127.0.0.1:8082 comes back wiped.

Examples:
  counter recover --data /var/lib/counter/n1 --force-new-cluster
  counter serve --data /var/lib/counter/n1 --id 127.0.0.1:8081 \\
    --conf 127.0.0.1:8081          # --conf is not used: DIR is not empty
  counter serve --data /var/lib/counter/n2 --id 127.0.0.1:8082 \\
    --join 127.0.0.1:8081          # on the second machine, DIR wiped
  counter peers add 127.0.0.1:8082 --peers 127.0.0.1:8081

Exit codes:
  0  recovered
  1  failed, or not confirmed: nothing changed
  2  usage error, or no --yes and stdin is not a terminal
`;

const CERTS = `Usage: counter certs --out DIR --hosts HOST,... [--days N] [--force]

Creates what 'counter serve --tls-*' needs for a quick start (like
'cockroach cert'): a certificate authority (ca.crt, ca.key) and one node
certificate signed by it (node.crt, node.key) that names every --hosts
entry (IP addresses and DNS names) and serves as server and client
certificate, so every node may use the same pair. Keys are written with
mode 0600. Give ca.crt to clients as --tls-ca; keep ca.key offline.

Options:
  --out DIR         where to write the four files (created if missing)
  --hosts LIST      host names and IP addresses the nodes are reached at,
                    comma-separated (required)
  --days N          validity in days (default: ${CERTS_DAYS_DEFAULT})
  --force           overwrite files that exist (default: refuse)
  -h, --help        show this help

Example:
  counter certs --out certs --hosts 127.0.0.1,localhost

Exit codes:
  0  written
  1  failed (for example: a file exists and --force was not given)
  2  usage error
`;

const HELP = `Usage: counter help [COMMAND]

Shows the help of COMMAND, or of counter itself when COMMAND is
omitted. 'counter COMMAND --help' shows the same text.

Options:
  -h, --help    show this help

Example:
  counter help incr
`;

const TEXTS: Record<CommandName, string> = {
  serve: SERVE,
  incr: INCR,
  get: GET,
  demo: DEMO,
  bench: BENCH,
  help: HELP,
  status: STATUS,
  leader: LEADER,
  peers: PEERS,
  groups: GROUPS,
  snapshot: SNAPSHOT,
  health: HEALTH,
  backup: BACKUP,
  restore: RESTORE,
  inspect: INSPECT,
  recover: RECOVER,
  certs: CERTS,
};

/**
 * Returns the help text of `command`, or of `counter` itself when `command` is undefined.
 * The text ends with a newline.
 *
 * @example Usage
 * ```ts
 * import { helpText } from "./help.ts";
 *
 * console.log(helpText("incr").split("\n")[0]); // "Usage: counter incr DELTA [OPTIONS]"
 * ```
 */
export function helpText(command?: CommandName): string {
  return command === undefined ? TOP : TEXTS[command];
}
