package node

import (
	"github.com/demandflow/demandflow/internal/sample"
	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
)

func streamtestBody(f stream.Format, rows [][]string) []byte {
	return streamtest.Body(f, sample.Header, rows)
}
