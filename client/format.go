package client

import (
	"fmt"
	"strings"
)

// Format is an ingest body format, as named on the command line.
type Format string

// The formats a Pusher can split. Arrow means the Arrow IPC stream format.
const (
	FormatCSV    Format = "csv"
	FormatNDJSON Format = "ndjson"
	FormatJSON   Format = "json"
	FormatXML    Format = "xml"
	FormatArrow  Format = "arrow"
)

// Formats lists every Format.
var Formats = []Format{FormatCSV, FormatNDJSON, FormatJSON, FormatXML, FormatArrow}

// ParseFormat parses a format name (case-insensitive; "jsonl" and
// "arrows" are accepted as aliases).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatCSV, FormatNDJSON, FormatJSON, FormatXML, FormatArrow:
		return f, nil
	case "jsonl":
		return FormatNDJSON, nil
	case "arrows", "ipc":
		return FormatArrow, nil
	}
	return "", fmt.Errorf("client: unknown format %q (want csv, ndjson, json, xml or arrow)", s)
}

// ContentType returns the format's ingest Content-Type.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return ContentTypeCSV
	case FormatNDJSON:
		return ContentTypeNDJSON
	case FormatJSON:
		return ContentTypeJSON
	case FormatXML:
		return ContentTypeXML
	case FormatArrow:
		return ContentTypeArrow
	}
	return "application/octet-stream"
}
