"""The lab servers' congestion control: the Linux default, cubic, whatever the host chose.

New network namespaces take the host's default, and tcp_allowed_congestion_control is host-wide,
so the namespace cannot change its own default; a listening socket can (root may pick any available
algorithm, and accepted connections inherit it). BBR, the default on some CI hosts, reads the lab's
OpenVPN server dropping a fifth of its packets at its own tun under 200 connections as a policer
and then crawls at a few KB/s for minutes: that measures the host's choice, not the VPN clients.
"""
import socket


def pin_cubic(sock):
    """Sets cubic on a listening TCP socket; quietly keeps the default where it is missing."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
    except (OSError, AttributeError):
        pass
