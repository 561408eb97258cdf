print("kvbench: not built yet")
