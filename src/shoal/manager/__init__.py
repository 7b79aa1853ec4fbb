"""The manager: control API, orchestrators, scheduler, dispatcher, allocator."""
