import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerAdminPages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let adminPages: [String: String] = [:]
    static let adminEnglish: [String: String] = [:]
    static let adminChinese: [String: String] = [:]
}
