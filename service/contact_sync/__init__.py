"""The full contact sync: `rules` starts, reads, lists and cancels syncs (as
`SyncView`s), `chunks` reads the contacts a chunk carries and builds it,
`progress` moves a sync along (checkpoint, results, its end);
`handlers.ContactSyncHandlers` serves the contact-sync RPCs. The driver and the
results consumer are in service.workers."""
