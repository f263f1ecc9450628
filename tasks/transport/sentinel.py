"""The reliable fetch through Redis Sentinel: kombu's SentinelChannel (which asks the Sentinels for
the master on every new connection, so a failover is followed on reconnect) with the reliable
channel's fetch, acks and recovery. Selected in celeryconfig for a `sentinel://` REDIS_URL."""

from __future__ import annotations

from kombu.transport import redis as kombu_redis

from tasks.transport.channel import ReliableChannel, Transport


class ReliableSentinelChannel(ReliableChannel, kombu_redis.SentinelChannel):
    """ReliableChannel whose connection pool is Sentinel-managed."""

    from_transport_options = tuple(  # type: ignore[assignment]
        dict.fromkeys(
            ReliableChannel.from_transport_options + kombu_redis.SentinelChannel.from_transport_options
        )
    )


class SentinelTransport(Transport):
    """tasks.transport's Transport for `sentinel://` URLs (kombu's default Sentinel port)."""

    Channel = ReliableSentinelChannel
    default_port = kombu_redis.SentinelTransport.default_port  # type: ignore[assignment]
