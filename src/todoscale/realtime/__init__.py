"""Socket.IO: connect authentication, rooms, and signals turned into events."""
