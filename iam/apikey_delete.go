package iam

import (
	"context"
	"net/http"
)

// DeleteAPIKey deletes the API key with the given id (not its value). A key
// that is already gone is not an error, so that deleting is safe to repeat.
// IAM documents DELETE /v1/apikeys/{id} ("Deletes an API key", IAM Identity
// Services API).
func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	resp, err := c.identity.DeleteAPIKeyWithContext(ctx, c.identity.NewDeleteAPIKeyOptions(id))
	if err != nil && statusOf(resp) != http.StatusNotFound {
		return apiError("deleting API key "+id, resp, err)
	}
	return nil
}
