package stream

import (
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Format is a request body format.
type Format string

// Formats and their content types.
const (
	CSV    Format = "csv"    // text/csv, header row
	NDJSON Format = "ndjson" // application/x-ndjson, one object per line
	JSON   Format = "json"   // application/json, an array of objects
	XML    Format = "xml"    // application/xml, see decode_xml.go
	Arrow  Format = "arrow"  // application/vnd.apache.arrow.stream (IPC stream)
)

// ErrUnsupportedFormat is returned for a content type or format name no
// decoder handles.
var ErrUnsupportedFormat = errors.New("stream: unsupported format")

var contentTypes = map[string]Format{
	"text/csv":                            CSV,
	"application/csv":                     CSV,
	"application/x-ndjson":                NDJSON,
	"application/ndjson":                  NDJSON,
	"application/jsonl":                   NDJSON,
	"application/json":                    JSON,
	"application/xml":                     XML,
	"text/xml":                            XML,
	"application/vnd.apache.arrow.stream": Arrow,
}

// ContentType returns the canonical content type of f.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv"
	case NDJSON:
		return "application/x-ndjson"
	case JSON:
		return "application/json"
	case XML:
		return "application/xml"
	case Arrow:
		return "application/vnd.apache.arrow.stream"
	}
	return ""
}

// FormatFromContentType maps a Content-Type header value (parameters such as
// charset are ignored) to a Format.
func FormatFromContentType(ct string) (Format, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	if f, ok := contentTypes[mt]; ok {
		return f, nil
	}
	return "", fmt.Errorf("%w: content type %q (want text/csv, application/x-ndjson, application/json, application/xml or application/vnd.apache.arrow.stream)", ErrUnsupportedFormat, ct)
}

// ParseFormat maps a format name (csv, ndjson, json, xml, arrow) to a Format.
func ParseFormat(name string) (Format, error) {
	switch f := Format(strings.ToLower(name)); f {
	case CSV, NDJSON, JSON, XML, Arrow:
		return f, nil
	}
	return "", fmt.Errorf("%w: %q (want csv, ndjson, json, xml or arrow)", ErrUnsupportedFormat, name)
}
