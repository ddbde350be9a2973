package projections

import (
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// checkpointOffsets keeps Watermill's consumer offsets in projection_checkpoints, so a
// projector's checkpoint is one row whichever path (batch catch-up or live delivery)
// moved it. Unlike Watermill's stock adapter it takes no FOR UPDATE lock: one process
// runs each consumer group at a time, under an advisory lock, and a row lock would let a
// slow group stall the others.
type checkpointOffsets struct{}

var _ wsql.OffsetsAdapter = checkpointOffsets{}

func (checkpointOffsets) NextOffsetQuery(p wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT "offset" AS offset_acked, transaction_id AS last_processed_transaction_id
			FROM projection_checkpoints WHERE name = $1`,
		Args: []any{p.ConsumerGroup},
	}, nil
}

func (checkpointOffsets) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `UPDATE projection_checkpoints SET transaction_id = $1, "offset" = $2
			WHERE name = $3 AND (transaction_id, "offset") < ($1::xid8, $2::bigint)`,
		Args: []any{p.LastRow.ExtraData["transaction_id"], p.LastRow.Offset, p.ConsumerGroup},
	}, nil
}

func (checkpointOffsets) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (checkpointOffsets) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

func (checkpointOffsets) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}
