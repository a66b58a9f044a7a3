import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Reads the console needs beside the REST API's (issue #19): one delivery of an endpoint with the request it sends.
extension WebhookStore {
    /// One delivery of the endpoint (another endpoint's or tenant's is not found), its attempts, and the body the
    /// dispatcher POSTs for it (``eventBody``, the bytes the dispatcher sends).
    public func consoleDelivery(tenantID: UUID, endpointID: UUID, deliveryID: UUID) async throws -> (record: WebhookDeliveryRecord, body: String) {
        try await database.withTenant(tenantID) { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.deliveryColumns)
                FROM webhook_deliveries d JOIN events e ON e.expires_on = d.event_expires AND e.id = d.event_id
                WHERE d.tenant_id = \(tenantID) AND d.endpoint_id = \(endpointID) AND d.id = \(deliveryID)
                """, logger: logger)
            guard let record = try await deliveries(connection, tenantID: tenantID, rows: rows).first else {
                throw HeraldError.notFound("webhook delivery")
            }
            let body = try await connection.query("""
                SELECT \(unescaped: Self.eventBody)
                FROM webhook_deliveries d JOIN events e ON e.expires_on = d.event_expires AND e.id = d.event_id
                WHERE d.tenant_id = \(tenantID) AND e.tenant_id = \(tenantID) AND d.id = \(deliveryID)
                """, logger: logger).decode(String.self).first { _ in true } ?? ""
            return (record, body)
        }
    }
}
