"""Scale-out: the controller and several web processes sharing one Redis (``[web] message_queue``).

This module is the design, and the one place to import the scale-out's names from; the code is in
display.queue_base (the keys, the client, signing), display.queue_controller (the controller's
publisher and ``ControllerQueue``), display.command_stream (the command stream's two ends),
display.mirrors (a web process's mirrors and Socket.IO manager), display.shared_sessions (log-outs and
log-in limits across processes) and display.web_main (a web process).

Who does what
-------------
The controller (``chamber run``) owns the engine, as always.  With a message queue configured it
serves no pages itself: it *publishes* and it *executes*.  Web processes (``chamber web``, any number,
display/web_main.py) serve the pages and the Socket.IO namespaces; they have no engine.  Everything
between them goes through Redis:

* **States and patches.**  The controller's :class:`QueuePublisher` is the ordinary publisher
  (display.publisher: at most one patch per stream and 100 ms, each with its ``rev``) whose patches go out
  through python-socketio's write-only ``RedisManager`` on channel :data:`CHANNEL`, the channel every
  web process's SocketIO listens on.  Before each patch is published, the stream's whole state (with
  that patch's ``rev``) is written to the key ``chamber:state:<namespace>``: whoever sees patch R on
  the channel finds at least R in the key.  A restarted controller reads those keys and carries on from
  them (same ``rev`` sequence, first patch a diff against what the pages hold), so pages connected to
  the web processes do not even notice it.

* **What a browser gets.**  Each web process keeps a mirror of each stream (:class:`MirrorManager`, a
  ``RedisManager`` whose listener applies every patch to the mirror before forwarding it).  A browser
  that connects or reconnects is sent the mirror at once as its ``state``; sending it and forwarding a
  patch take the same lock, so a page gets state R and then exactly patches R+1, R+2, ...  A patch
  whose ``rev`` is not the next one (a message lost while Redis was reconnecting, a web process that
  has just started, a controller that started over with an empty Redis) makes the web process read
  the key again and send the whole state to every page it serves; a patch older than the mirror
  (already in a state read from the key) is dropped.  Null members are absent from a mirror, as from
  a page's own state after a merge patch (a page treats a missing key as null).

* **Commands, exactly once.**  A web process checks a console command as the single-process server
  does (log-in, role, CSRF, shape; display.commands), then adds it to the Redis stream
  ``chamber:commands`` with a unique id, the user, role and language, its time, and an HMAC made with
  the session key file all processes share (``[web] secret_key_file``), and waits on the list
  ``chamber:reply:<id>`` (BLPOP, ``SUBMIT_TIMEOUT_S``).  The controller's :class:`CommandConsumer`
  reads the stream in a consumer group, one command at a time, and for each:

  1. refuses a bad signature (somebody who can write to Redis is not thereby a secretary);
  2. if ``chamber:done:<id>`` exists, the command ran already: its stored reply is sent again, the
     entry acknowledged, nothing executed (a redelivery or a replayed message);
  3. if the entry is older than ``COMMAND_TTL_S`` by Redis's own clock (its stream id), it is not
     executed and answered ``timeout``: the browser was told "no answer in time", and a vote must not
     open by itself minutes later;
  4. otherwise writes the marker ``chamber:inflight`` (the id, and where the journal ended: sitting
     and seq) and runs the command through the ordinary CommandRunner, which submits it to the engine
     (the engine journals it before applying it);
  5. in one MULTI: stores the reply under ``chamber:done:<id>`` (a day), deletes the marker, pushes
     the reply to ``chamber:reply:<id>`` and acknowledges the stream entry.

  On start, before reading anything new, the consumer settles a marker left by a crash: it looks in
  the journal, after the recorded position, for a record with exactly the command's type and payload
  (only the consumer submits web commands, one at a time, so nothing else can have written it).  Found:
  the command was executed; its reply is rebuilt by replaying the sitting to that record (accepted, or
  refused with the core's reason) and stored as done.  Not found: it was not, and the pending stream
  entry (Redis keeps it in the group's pending list until acknowledged) is executed now if still
  within its TTL.

  The consumer also remembers the ids (and replies) of the last ``RECENT_IDS`` commands it finished,
  for a Redis that comes back having lost its last writes and hands an executed command out again.

  What this guarantees: a command is applied at most once, and exactly once if the controller reads it
  within ``COMMAND_TTL_S`` (and the journal can be written), across controller crashes at any point,
  as long as Redis keeps what it acknowledged (Redis running; or restarted with ``appendonly yes`` +
  ``appendfsync always``).  Why: before the engine sees a command, Redis holds its delivery and the
  marker; after, the journal holds the command and Redis its done marker.  When Redis loses
  acknowledged writes (a restart without persistence, or ``appendfsync everysec`` losing its last
  second), a command in flight can be lost (the browser gets ``timeout``), and it is executed twice
  only if the controller restarted as well within that lost window: then neither the marker (for the
  journal check) nor the consumer's memory of the id is left.  A command the engine refused without
  journaling it (no sitting open) is not in the journal, so after a crash it may be tried once more;
  nothing of the first try was recorded or applied.  A Redis that comes back empty (no stream, no
  group) is set up again by the consumer.

* **Sessions.**  The session cookie is signed with the shared key file, users are read from the store,
  and two things that were per process become shared: a log-out (``chamber:revoked:<session>``, kept
  for the session lifetime, announced on ``chamber:logout`` so every web process closes that session's
  console sockets) and the log-in rate limit (:class:`SharedLoginGuard`: a sorted set per user name and
  per address, so N web processes do not give a guesser N times the tries).
"""

from __future__ import annotations

from display.command_stream import (
    CommandConsumer,
    CommandLink,
    Inflight,
    QueueRunner,
    RemoteRunner,
)
from display.mirrors import (
    Mirror,
    MirrorManager,
    MirrorPublisher,
    MirrorStream,
)
from display.queue_base import (
    CHANNEL,
    COMMAND_TTL_S,
    COMMANDS,
    CONSUMER,
    DONE_TTL_S,
    GROUP,
    INFLIGHT,
    LOGOUT_CHANNEL,
    NAMESPACES,
    READ_BLOCK_MS,
    RECENT_IDS,
    REPLAY_WINDOW_MS,
    REPLY_TTL_S,
    SIMULATOR,
    STREAM_MAXLEN,
    BadCommand,
    Signer,
    connect,
    done_key,
    load_state,
    reply_key,
    revoked_key,
    state_key,
    without_password,
)
from display.queue_controller import (
    ControllerQueue,
    QueuePublisher,
    start_controller_queue,
)
from display.shared_sessions import (
    SharedLoginGuard,
    SharedRevocations,
)

__all__ = [
    "CHANNEL",
    "COMMANDS",
    "COMMAND_TTL_S",
    "CONSUMER",
    "DONE_TTL_S",
    "GROUP",
    "INFLIGHT",
    "LOGOUT_CHANNEL",
    "NAMESPACES",
    "READ_BLOCK_MS",
    "RECENT_IDS",
    "REPLAY_WINDOW_MS",
    "REPLY_TTL_S",
    "SIMULATOR",
    "STREAM_MAXLEN",
    "BadCommand",
    "CommandConsumer",
    "CommandLink",
    "ControllerQueue",
    "Inflight",
    "Mirror",
    "MirrorManager",
    "MirrorPublisher",
    "MirrorStream",
    "QueuePublisher",
    "QueueRunner",
    "RemoteRunner",
    "SharedLoginGuard",
    "SharedRevocations",
    "Signer",
    "connect",
    "done_key",
    "load_state",
    "reply_key",
    "revoked_key",
    "start_controller_queue",
    "state_key",
    "without_password",
]
