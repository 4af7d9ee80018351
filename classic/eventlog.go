package classic

import (
	"context"

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
