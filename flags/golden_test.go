package flags_test

// bucketsGolden are the buckets of TestBucketFixed's pairs, computed
// independently of this package from the formula in doc/flags.md.
var bucketsGolden = [5]int{91, 83, 39, 25, 5}
