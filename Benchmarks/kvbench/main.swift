KVBench.main()
