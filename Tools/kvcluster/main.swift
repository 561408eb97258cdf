print("kvcluster")
