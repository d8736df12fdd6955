"""The bus between the processes, checked from both ends at once: what the
service writes, the dispatcher reads alike, and the service's limits fit the
bus's and the provider's. Each process's own tests import only that process."""
