-- +goose Up
-- A room's forward extremities move into its row of writemodel.rooms, which every event
-- updates anyway (max_depth): one update per event instead of a delete and an insert
-- into a table whose index grew a dead entry per event (and whose deletes then walked
-- them). The update changes no indexed column, so it stays on its page (a HOT update)
-- when the page has room: the fill factor leaves half of each page for it.
-- An extremity is {event_id, depth} and, in room versions 1 and 2, the reference hash
-- later events quote ("hash") or the PDU it is computed from ("pdu", the rows moved here).
ALTER TABLE writemodel.rooms ADD COLUMN extremities json NOT NULL DEFAULT '[]';
ALTER TABLE writemodel.rooms SET (fillfactor = 50);
UPDATE writemodel.rooms r SET extremities = coalesce((
    SELECT json_agg(json_build_object('event_id', x.event_id, 'depth', x.depth, 'pdu', x.pdu) ORDER BY x.depth DESC, x.event_id)
    FROM writemodel.room_extremities x WHERE x.room_id = r.room_id), '[]');
DROP TABLE writemodel.room_extremities;

-- +goose Down
SELECT 1;
