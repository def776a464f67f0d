package tracking

import (
	"fmt"
	"time"
)

// Expire removes every tracking record older than before from the Pebble
// instance w is applied to, with range deletes only (no reads, no scans):
//
//   - transactions, blocks and rejections: ids with a timestamp < before
//     (the id's timestamp is the ingress time);
//   - the tx index and the object index (its staged calls and runs, and
//     the retired 'O' and 'o' tables): whole day partitions strictly
//     before before's day, so up to one day of index entries outlives its
//     window; tx index entries whose transaction is gone are skipped by
//     Transactions, and object entries are only returned for object-id
//     lookups. The object index's counters (a meta key) are not reset:
//     they only decide when the next fold happens;
//   - statistics: minutes strictly before before's minute.
//
// In the FSM, before must come from the replicated command (see Cutoff),
// never from the local clock, so every node deletes the same ranges. The
// space is reclaimed when Pebble compacts the range tombstones.
func (s *Store) Expire(w Writer, before time.Time) error {
	if before.IsZero() {
		return nil
	}
	p := s.k.p
	u := ulidBound(before)
	day := unixDay(before)
	minute := unixMinute(before)
	var ranges [][2][]byte
	for _, t := range []byte{tableTx, tableBlock, tableRejection} {
		ranges = append(ranges, [2][]byte{{p, t}, append([]byte{p, t}, u...)})
	}
	for _, t := range []byte{tableIndex, tableObjStage, tableObjRun, tableObjectV2, tableObjectV1} {
		ranges = append(ranges, [2][]byte{{p, t}, appendU32([]byte{p, t}, day)})
	}
	q := s.k.q
	ranges = append(ranges, [2][]byte{{q, tableObjRun}, appendU32([]byte{q, tableObjRun}, day)})
	for _, d := range []byte{dimStage, dimDataset, dimSource, dimNode} {
		ranges = append(ranges, [2][]byte{{p, tableStats, d}, appendU32([]byte{p, tableStats, d}, minute)})
	}
	for _, r := range ranges {
		if err := w.DeleteRange(r[0], r[1], nil); err != nil {
			return fmt.Errorf("tracking: expire: %w", err)
		}
	}
	return nil
}
