print("kvserver: not built yet (see issue tracker)")
