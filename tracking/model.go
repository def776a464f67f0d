package tracking

import (
	"fmt"
	"time"
)

// Stage is a step of the write path. The order of Stages is the pipeline
// order and is part of the on-disk format (keys.go).
type Stage string

// The write-path stages, in pipeline order.
const (
	StageIngress  Stage = "ingress"
	StageValidate Stage = "validate"
	StageCommit   Stage = "commit"
	StageApply    Stage = "apply"
	StageForecast Stage = "forecast"
	StageEgress   Stage = "egress"
)

// Stages lists every stage in pipeline order. Callers must not modify it.
var Stages = []Stage{StageIngress, StageValidate, StageCommit, StageApply, StageForecast, StageEgress}

const numStages = 6

// code returns the stage's 1-based on-disk code, or 0 if unknown.
func (s Stage) code() byte {
	for i, st := range Stages {
		if st == s {
			return byte(i + 1)
		}
	}
	return 0
}

func stageOf(code byte) Stage {
	if code == 0 || int(code) > numStages {
		return ""
	}
	return Stages[code-1]
}

// Source is how a transaction entered the cluster.
type Source string

// Known sources.
const (
	SourceHTTP    Source = "http"
	SourceHTTP3   Source = "http3"
	SourceFile    Source = "file"
	SourceWebhook Source = "webhook"
	SourceSQL     Source = "sql"
	SourceJob     Source = "job"
)

func (s Source) valid() bool {
	switch s {
	case SourceHTTP, SourceHTTP3, SourceFile, SourceWebhook, SourceSQL, SourceJob:
		return true
	}
	return false
}

// Status is a transaction's derived outcome; see deriveStatus.
type Status string

// Transaction statuses.
const (
	StatusInProgress      Status = "in_progress"
	StatusSucceeded       Status = "succeeded"
	StatusPartiallyFailed Status = "partially_failed"
	StatusFailed          Status = "failed"
)

var statuses = []Status{StatusInProgress, StatusSucceeded, StatusPartiallyFailed, StatusFailed}

func (s Status) code() byte {
	for i, st := range statuses {
		if st == s {
			return byte(i + 1)
		}
	}
	return 0
}

func statusOf(code byte) Status {
	if code == 0 || int(code) > len(statuses) {
		return ""
	}
	return statuses[code-1]
}

// BlockStatus is the outcome of one stage of one transaction.
type BlockStatus string

// Block outcomes.
const (
	BlockSuccess BlockStatus = "success"
	BlockFailed  BlockStatus = "failed"
	BlockSkipped BlockStatus = "skipped"
)

var blockStatuses = []BlockStatus{BlockSuccess, BlockFailed, BlockSkipped}

func (s BlockStatus) code() byte {
	for i, st := range blockStatuses {
		if st == s {
			return byte(i + 1)
		}
	}
	return 0
}

func blockStatusOf(code byte) BlockStatus {
	if code == 0 || int(code) > len(blockStatuses) {
		return ""
	}
	return blockStatuses[code-1]
}

// Outcome is what happened to one object (row) in one stage.
type Outcome string

// Object outcomes.
const (
	OutcomeAccepted Outcome = "accepted"
	OutcomeRejected Outcome = "rejected"
)

func (o Outcome) code() byte {
	switch o {
	case OutcomeAccepted:
		return 1
	case OutcomeRejected:
		return 2
	}
	return 0
}

func outcomeOf(code byte) Outcome {
	switch code {
	case 1:
		return OutcomeAccepted
	case 2:
		return OutcomeRejected
	}
	return ""
}

// Transaction is one unit of ingest (one request, file, webhook call or SQL
// page). ID is a ULID assigned at ingress. Status and Updated are derived by
// the store from the recorded blocks; values passed in for them to
// RecordTransaction are ignored, except that a later Updated is kept.
type Transaction struct {
	ID             string    `json:"id"`
	Dataset        string    `json:"dataset"`
	Source         Source    `json:"source"`
	ContentType    string    `json:"content_type,omitempty"`
	Bytes          int64     `json:"bytes"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
	Status         Status    `json:"status"`
	In             int64     `json:"in"`
	Accepted       int64     `json:"accepted"`
	Rejected       int64     `json:"rejected"`
	Node           string    `json:"node,omitempty"`
	Client         string    `json:"client,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
}

// Block is the progress record of one stage of one transaction. CPUTime and
// Bytes are the resources the stage used, so cost per stage can be summed.
type Block struct {
	Stage    Stage         `json:"stage"`
	Status   BlockStatus   `json:"status"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	RowsIn   int64         `json:"rows_in"`
	RowsOut  int64         `json:"rows_out"`
	Error    string        `json:"error,omitempty"`
	Node     string        `json:"node,omitempty"`
	CPUTime  time.Duration `json:"cpu_time_ns"`
	Bytes    int64         `json:"bytes"`
	// Parts is how many records were merged into this block (a transaction
	// split over several Raft entries records each stage once per entry).
	// It is set by the store.
	Parts int `json:"parts"`
}

// Progress is the derived view of how far a transaction got.
type Progress struct {
	// StagesDone counts stages with a success or skipped block.
	StagesDone int `json:"stages_done"`
	// StagesTotal is the number of pipeline stages (len(Stages)).
	StagesTotal int `json:"stages_total"`
	// CurrentStage is the failed stage if one failed, else the first stage
	// in pipeline order without a block; empty when every stage is done.
	CurrentStage Stage `json:"current_stage,omitempty"`
	// LastCompleted is the last stage in pipeline order that is done.
	LastCompleted Stage `json:"last_completed,omitempty"`
	// LastError is the error text of the most recently recorded block that
	// carried one.
	LastError string `json:"last_error,omitempty"`
}

// TxView is the answer to a transaction lookup.
type TxView struct {
	Transaction Transaction `json:"transaction"`
	Blocks      []Block     `json:"blocks"`
	Progress    Progress    `json:"progress"`
}

// Rejection is one rejected row of a transaction. A row may have several.
type Rejection struct {
	Row      int    `json:"row"`
	ObjectID string `json:"object_id,omitempty"`
	Field    string `json:"field,omitempty"`
	Reason   string `json:"reason"`
}

// ObjectEntry is one appearance of an object (a row with an object id) in
// one stage of one transaction, as passed to RecordObjects. Field and
// Reason are kept only for rejected entries.
type ObjectEntry struct {
	ObjectID string
	Row      int
	Stage    Stage
	Outcome  Outcome
	Field    string
	Reason   string
}

// ObjectEvent is one step of an object's journey, as returned by Object.
// Time is the record time given to RecordObjects, to the millisecond.
type ObjectEvent struct {
	ObjectID string    `json:"object_id"`
	Time     time.Time `json:"time"`
	TxID     string    `json:"tx_id"`
	Dataset  string    `json:"dataset"`
	Row      int       `json:"row"`
	Stage    Stage     `json:"stage"`
	Outcome  Outcome   `json:"outcome"`
	Field    string    `json:"field,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// txState is the stored transaction record: the Transaction plus the
// per-stage block status needed to derive status and progress without
// reading the blocks.
type txState struct {
	tx        Transaction // ID, Status unset in storage
	recorded  bool        // RecordTransaction was called (else a stub made by RecordBlock)
	stages    [numStages]byte
	lastError string
}

// deriveStatus applies the status rules, in order:
//  1. a failed block -> failed;
//  2. required stages not all done (success or skipped) -> in_progress;
//  3. rows were rejected and none accepted -> failed;
//  4. some rows rejected -> partially_failed;
//  5. otherwise -> succeeded.
func deriveStatus(st *txState, required *[numStages]bool) Status {
	for _, c := range st.stages {
		if blockStatusOf(c) == BlockFailed {
			return StatusFailed
		}
	}
	for i, req := range required {
		if req && !stageDone(st.stages[i]) {
			return StatusInProgress
		}
	}
	switch {
	case st.tx.Rejected > 0 && st.tx.Accepted == 0:
		return StatusFailed
	case st.tx.Rejected > 0:
		return StatusPartiallyFailed
	}
	return StatusSucceeded
}

func stageDone(code byte) bool {
	bs := blockStatusOf(code)
	return bs == BlockSuccess || bs == BlockSkipped
}

// deriveProgress computes the Progress view of st.
func deriveProgress(st *txState) Progress {
	p := Progress{StagesTotal: numStages, LastError: st.lastError}
	for i, c := range st.stages {
		switch {
		case stageDone(c):
			p.StagesDone++
			p.LastCompleted = Stages[i]
		case blockStatusOf(c) == BlockFailed:
			if p.CurrentStage == "" || blockStatusOf(st.stages[p.CurrentStage.code()-1]) != BlockFailed {
				p.CurrentStage = Stages[i]
			}
		default:
			if p.CurrentStage == "" {
				p.CurrentStage = Stages[i]
			}
		}
	}
	return p
}

// mergeBlock folds a repeated record of the same stage into old: row
// counts, CPU time and bytes add up, the time span widens, failed wins over
// success wins over skipped, and the latest non-empty error and node win.
func mergeBlock(old, b Block) Block {
	m := old
	m.Parts = old.Parts + 1
	if !b.Started.IsZero() && (m.Started.IsZero() || b.Started.Before(m.Started)) {
		m.Started = b.Started
	}
	if b.Finished.After(m.Finished) {
		m.Finished = b.Finished
	}
	m.RowsIn += b.RowsIn
	m.RowsOut += b.RowsOut
	m.CPUTime += b.CPUTime
	m.Bytes += b.Bytes
	if b.Error != "" {
		m.Error = b.Error
	}
	if b.Node != "" {
		m.Node = b.Node
	}
	switch {
	case old.Status == BlockFailed || b.Status == BlockFailed:
		m.Status = BlockFailed
	case old.Status == BlockSuccess || b.Status == BlockSuccess:
		m.Status = BlockSuccess
	default:
		m.Status = BlockSkipped
	}
	return m
}

func validateBlock(b Block) error {
	if b.Stage.code() == 0 {
		return fmt.Errorf("%w: unknown stage %q", ErrInvalid, b.Stage)
	}
	if b.Status.code() == 0 {
		return fmt.Errorf("%w: unknown block status %q", ErrInvalid, b.Status)
	}
	if !b.Finished.IsZero() && b.Finished.Before(b.Started) {
		return fmt.Errorf("%w: block %s finished before it started", ErrInvalid, b.Stage)
	}
	return nil
}
