package classic

import (
	"context"
	"encoding/json"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
)

// EventLogPage reads one page of the account's classic event log
// (SoftLayer_Event_Log::getAllObjects with objectFilter and
// resultLimit=<offset>,<limit>). objectFilter is a JSON object filter such
// as softlayer-go's filter.Build makes; "" reads everything. A page shorter
// than limit is the last. Reads are retried like every read. The audit
// package pages through the log with it.
func (c *Client) EventLogPage(ctx context.Context, objectFilter string, offset, limit int) ([]datatypes.Event_Log, error) {
	var events []datatypes.Event_Log
	err := c.read(ctx, "SoftLayer_Event_Log::getAllObjects", func(s *session.Session) (err error) {
		svc := services.GetEventLogService(s).Offset(offset).Limit(limit)
		if objectFilter != "" {
			svc = svc.Filter(objectFilter)
		}
		events, err = svc.GetAllObjects()
		return err
	})
	return events, err
}

// EventLogRecords reads one page like EventLogPage but returns each record
// as the JSON the service sent, undecoded, so that one record softlayer-go's
// datatypes.Event_Log cannot hold does not fail the page: SYSTEM records
// carry userId "" where the datatype has an int (softlayer-python's
// SoftLayer/fixtures/SoftLayer_Event_Log.py). The audit package reads the
// event log with it.
func (c *Client) EventLogRecords(ctx context.Context, objectFilter string, offset, limit int) ([]json.RawMessage, error) {
	var records []json.RawMessage
	err := c.read(ctx, "SoftLayer_Event_Log::getAllObjects", func(s *session.Session) error {
		svc := services.GetEventLogService(s).Offset(offset).Limit(limit)
		if objectFilter != "" {
			svc = svc.Filter(objectFilter)
		}
		records = nil
		return s.DoRequest("SoftLayer_Event_Log", "getAllObjects", nil, &svc.Options, &records)
	})
	return records, err
}
