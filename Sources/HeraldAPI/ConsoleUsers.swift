import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerUserPages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let userPages: [String: String] = [:]
    static let userEnglish: [String: String] = [:]
    static let userChinese: [String: String] = [:]
}
