package cluster

// Sorting by series id, shared by apply (sortRows) and folds
// (foldScratch.bySeries). Series ids are uniform hashes (stream.SeriesID),
// so a counting sort into buckets of about four ids by their top bits
// does nearly all of the ordering in two passes, and each bucket then
// takes a handful of compares. Each caller counts and scatters its own
// items (they come from different places): sidBuckets sizes the buckets,
// bucketStarts turns the counts into positions, and sortBuckets finishes
// every bucket. Ids crafted to share their top bits land in one bucket,
// which the comparison sort for large buckets keeps O(n log n).

// sidBuckets returns, for n ids, the shift that maps an id to its bucket
// (sid >> shift: about four ids per bucket, at most 1<<maxBits buckets)
// and zeroed counts, one more than there are buckets, reusing buf when it
// is large enough. The caller counts bucket k's ids in counts[k+1].
func sidBuckets(n, maxBits int, buf []int32) (shift int, counts []int32) {
	bits := 1
	for bits < maxBits && 4<<bits < n {
		bits++
	}
	if cap(buf) < 1<<bits+1 {
		buf = make([]int32, 1<<bits+1)
	}
	counts = buf[:1<<bits+1]
	clear(counts)
	return 64 - bits, counts
}

// bucketStarts turns counts[k+1] = the size of bucket k into counts[k] =
// the start of bucket k. A scatter that places each item at counts[k] and
// increments it leaves counts[k] = the end of bucket k.
func bucketStarts(counts []int32) {
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
}

// sortBuckets sorts each bucket of items, which a scatter left in bucket
// order with ends[k] the end of bucket k: buckets of at most small items
// with insertion (a stable sort by id: the scatter kept the items' order
// within a bucket), larger ones with large.
func sortBuckets[T any](items []T, ends []int32, small int32, insertion, large func([]T)) {
	lo := int32(0)
	for _, hi := range ends[:len(ends)-1] {
		switch {
		case hi-lo <= 1:
		case hi-lo <= small:
			insertion(items[lo:hi])
		default:
			large(items[lo:hi])
		}
		lo = hi
	}
}
