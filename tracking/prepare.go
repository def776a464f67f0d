package tracking

import (
	"errors"
	"time"
)

// AppliedColumns are the object-id and row columns of one applied record,
// as RecordApplied takes them.
type AppliedColumns struct {
	IDs  ObjectColumn
	Rows RowColumn
}

// PreparedObjects is the encoding work of RecordApplied calls done ahead,
// on another goroutine, while the caller does other work for the same
// batch (the FSM writes the rows meanwhile). The encoding is most of a
// call's cost and needs nothing of the Recorder's state; what does (the
// transaction's dataset, the counters, a fold) stays in RecordPrepared,
// on the Recorder's goroutine, in call order. The bytes staged are the
// ones RecordApplied would stage.
type PreparedObjects struct {
	s       *Store
	txID    string
	dataset string
	at      time.Time
	done    chan struct{}
	calls   []preparedCall
	waited  bool
	// released: the scratch went back to the pool.
	released bool
}

// preparedCall is one prepared RecordApplied call.
type preparedCall struct {
	src     columnSource
	sc      *objScratch
	encoded []byte // without the dataset; nil when scan failed or found nothing
	err     error  // of scan
}

// PrepareApplied starts encoding, on a new goroutine, one RecordApplied
// call (txID, dataset, at, c.IDs, c.Rows) per element of cols. The
// columns must stay valid and unchanged until RecordPrepared or Release
// returns. Pass the result to RecordPrepared of the Recorder that would
// have made the calls, at the point it would have made them; a
// PreparedObjects that is not recorded must be released.
func (s *Store) PrepareApplied(txID, dataset string, at time.Time, cols []AppliedColumns) *PreparedObjects {
	p := &PreparedObjects{s: s, txID: txID, dataset: dataset, at: at, done: make(chan struct{})}
	p.calls = make([]preparedCall, len(cols))
	for i, c := range cols {
		p.calls[i].src = newColumnSource(c.IDs, c.Rows)
	}
	go func() {
		defer close(p.done)
		for i := range p.calls {
			c := &p.calls[i]
			c.sc = s.getObjScratch()
			if c.err = c.sc.scan(txID, &c.src); c.err == nil && c.sc.entries > 0 {
				c.encoded = c.sc.encode(&c.src, "", false)
			}
		}
	}()
	return p
}

// RecordPrepared makes p's calls as RecordApplied would, each counted
// and reported on its own if it fails; it returns their errors joined.
// It releases p.
func (rc *Recorder) RecordPrepared(p *PreparedObjects) error {
	p.wait()
	defer p.Release()
	id, err := parseID(p.txID)
	if err != nil {
		// As RecordApplied: every call fails the same way.
		errs := make([]error, len(p.calls))
		for i := range p.calls {
			errs[i] = rc.fail(err)
		}
		return errors.Join(errs...)
	}
	var errs []error
	for i := range p.calls {
		c := &p.calls[i]
		err := c.err
		if err == nil {
			err = rc.stageScanned(c.sc, id, p.dataset, p.at, &c.src, c.encoded)
		}
		if err := rc.fail(err); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// For says whether p prepared calls of transaction txID in dataset (a
// caller that learns better after PrepareApplied releases p and calls
// RecordApplied instead).
func (p *PreparedObjects) For(txID, dataset string) bool {
	return p.txID == txID && p.dataset == dataset
}

func (p *PreparedObjects) wait() {
	if !p.waited {
		<-p.done
		p.waited = true
	}
}

// Release waits for p's encoding to finish and returns its buffers; after
// it the columns are no longer read. It may be called more than once.
func (p *PreparedObjects) Release() {
	if p == nil || p.released {
		return
	}
	p.wait()
	for i := range p.calls {
		if sc := p.calls[i].sc; sc != nil {
			p.s.putObjScratch(sc)
		}
		p.calls[i] = preparedCall{}
	}
	p.released = true
}
