import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerWebhookPages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let webhookPages: [String: String] = [:]
    static let webhookEnglish: [String: String] = [:]
    static let webhookChinese: [String: String] = [:]
}
