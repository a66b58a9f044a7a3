import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerListPages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let listPages: [String: String] = [:]
    static let listEnglish: [String: String] = [:]
    static let listChinese: [String: String] = [:]
}
